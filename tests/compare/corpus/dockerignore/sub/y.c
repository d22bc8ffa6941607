sub/y.c
