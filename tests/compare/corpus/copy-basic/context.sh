chmod 0644 a.txt files/one.txt files/nested/two.txt sub/deeper/three.txt
chmod 0755 b.sh
chmod 0750 files/nested
chmod 0700 sub/deeper
mkdir -m 0705 files/empty
chown -R 1234:4321 sub
ln files/one.txt files/one-hardlink.txt
ln files/one.txt files/nested/one-hardlink.txt
