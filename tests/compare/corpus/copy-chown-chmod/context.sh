chmod 0644 f.txt dir/x
chmod 0600 dir/sub/y
chmod 0750 dir/sub
mkdir -p setuid/sticky
echo u > setuid/su
echo g > setuid/sg
chmod 4755 setuid/su
chmod 2711 setuid/sg
chmod 3777 setuid/sticky
chmod 2755 setuid
