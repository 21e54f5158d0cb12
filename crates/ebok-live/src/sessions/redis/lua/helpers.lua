local function cmp8(a, ao, b, bo)
  for i = 0, 7 do
    local x, y = string.byte(a, ao + i), string.byte(b, bo + i)
    if x ~= y then
      if x < y then return -1 else return 1 end
    end
  end
  return 0
end
local function bucket(h)
  return tostring((string.byte(h, 7) % 64) * 256 + string.byte(h, 8))
end
local function touch(k, ms)
  local t = redis.call('PTTL', k)
  ms = tonumber(ms)
  if t == -1 or (t >= 0 and t < ms) then
    redis.call('PEXPIRE', k, ms + 3600000)
  end
end
