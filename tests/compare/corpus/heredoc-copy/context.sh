# The files of Dockerfile.buildah (what BuildKit makes of the heredocs of Dockerfile).
mkdir buildah-equivalent
cd buildah-equivalent
echo 'hello world' > motd
echo 'file a' > A
echo 'file b' > B
printf '#!/bin/sh\necho script\n' > script.sh
echo 'no $NAME expansion' > quoted
chmod 0644 motd A B script.sh quoted
