# 6 MiB of incompressible bytes
head -c 6291456 /dev/urandom > big.bin
chmod 0644 big.bin
