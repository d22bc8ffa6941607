mkdir -p src/app/bin src/app/etc src/app/empty
echo '#!/bin/sh' > src/app/bin/run
echo conf > src/app/etc/app.conf
chmod 0755 src/app/bin/run
chmod 4750 src/app/etc/app.conf
chmod 0700 src/app/empty
ln -s ../etc/app.conf src/app/bin/conf-link
ln src/app/bin/run src/app/bin/run-hard
tar --owner=1234 --group=5678 --numeric-owner -C src -cf - app | gzip -n > app.tar.gz
mkdir -p src/tree/a/b
echo t > src/tree/a/b/t.txt
chmod 0640 src/tree/a/b/t.txt
tar --numeric-owner -C src/tree -cf - . | bzip2 -c > tree.tar.bz2
tar --numeric-owner -C src/tree -cf - a | xz -c > tree.tar.xz
tar --owner=0 --group=0 -C src -cf plain.tar tree
echo 'not an archive' | gzip -n > note.gz
rm -rf src
chmod 0644 readme.txt adddir/inner.txt note.gz app.tar.gz tree.tar.bz2 tree.tar.xz plain.tar
