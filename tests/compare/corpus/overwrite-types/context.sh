chmod 0644 passwd merge/new.txt merge/keep/added
chmod 0700 merge/keep
