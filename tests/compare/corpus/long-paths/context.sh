d=long/0123456789012345678901234567890123456789/0123456789012345678901234567890123456789/0123456789012345678901234567890123456789
mkdir -p "$d"
echo deep > "$d/file.txt"
name=$(printf 'x%.0s' $(seq 1 240))
echo long-name > "long/$name"
ln -s "$d/file.txt" long/link-to-deep
ln "$d/file.txt" "$d/hard-link-to-file-with-a-long-path-0123456789012345678901234567890123456789"
find long -type f -exec chmod 0644 {} +
find long -type d -exec chmod 0755 {} +
