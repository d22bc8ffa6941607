i=0
while [ $i -lt 1000 ]; do
  d=many/d$((i % 10))
  mkdir -p $d
  echo "file $i" > $d/f$i.txt
  i=$((i + 1))
done
find many -type f -exec chmod 0644 {} +
find many -type d -exec chmod 0755 {} +
