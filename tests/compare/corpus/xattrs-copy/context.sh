echo x > withattr.txt
mkdir attrdir
echo y > attrdir/y
chmod 0644 withattr.txt attrdir/y
setfattr -n user.comment -v hello withattr.txt
setfattr -n user.bin -v 0x00ff10 attrdir/y
setfattr -n user.dir -v d attrdir
