local cur = redis.call('HGET', KEYS[1], ARGV[1])
if (not cur) or #cur ~= 8 or cmp8(ARGV[2], 1, cur, 1) > 0 then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
end
touch(KEYS[1], ARGV[3])
return 1
