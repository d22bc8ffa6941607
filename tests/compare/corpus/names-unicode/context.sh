mkdir -p names
for n in 'é café' 'naïve' 'Ünïcödé' '中文 文件' 'emoji 🎉' '-leading' "it's" 'a#b' 'semi;colon' 'dollar$sign' 'percent%20' 'back\slash'; do
  printf '%s\n' "$n" > "names/$n"
done
printf 'nl\n' > 'names/new
line'
mkdir -p 'names/dir ü/sub ä'
echo deep > 'names/dir ü/sub ä/ö'
find . -type f -exec chmod 0644 {} +
find . -type d -exec chmod 0755 {} +
