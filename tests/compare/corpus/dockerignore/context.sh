find . -type f -exec chmod 0644 {} +
find . -type d -exec chmod 0755 {} +
mkdir -p .git/objects sub/.hidden
echo '[core]' > .git/config
echo SECRET=1 > .env
echo SECRET= > .env.example
echo h > .hidden-file
echo h > sub/.hidden/x
chmod 0644 .git/config .env .env.example .hidden-file sub/.hidden/x
