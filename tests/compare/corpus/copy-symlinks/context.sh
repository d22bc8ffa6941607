mkdir -p tree/sub
echo t > tree/target.txt
ln -s target.txt tree/rel-link
ln -s /etc/passwd tree/abs-link
ln -s ../missing tree/sub/dangling
ln -s sub tree/dir-link
chmod 0644 f.txt tree/target.txt
