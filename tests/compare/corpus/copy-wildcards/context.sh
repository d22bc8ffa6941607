find . -type f -exec chmod 0644 {} +
find . -type d -exec chmod 0755 {} +
chmod 0711 dir2/sub
