local mode, t, nas = ARGV[1], ARGV[2], ARGV[3]
local out = {}
for _, key in ipairs(KEYS) do
  local all = redis.call('HGETALL', key)
  for i = 1, #all, 2 do
    local v = all[i + 1]
    local hit = false
    if mode == 'x' then
      hit = #v >= 17 and cmp8(v, 2, t, 1) <= 0
    elseif string.byte(v, 1) == 1 and #v >= 26 then
      hit = nas == '' or string.sub(v, 26, 25 + #nas) == nas
      if hit and mode == 'n' then hit = cmp8(v, 10, t, 1) <= 0 end
    end
    if hit then
      out[#out + 1] = all[i]
      out[#out + 1] = v
    end
  end
end
return out
