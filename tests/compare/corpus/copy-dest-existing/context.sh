chmod 0644 f.txt tree/t.txt tree/sub/s.txt
chmod 0751 tree
chmod 0705 tree/sub
