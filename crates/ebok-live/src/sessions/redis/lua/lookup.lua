for i, key in ipairs(KEYS) do
  local ref = redis.call('HGET', key, ARGV[i + 1])
  if ref and #ref == 8 then
    local v = redis.call('HGET', ARGV[1] .. bucket(ref), ref)
    if v and string.byte(v, 1) == 1 then return v end
  end
end
return false
