local sp = ARGV[1]
local resets, ttls, lens, done = {}, {}, {}, {}
local function later(k, ms)
  ms = tonumber(ms)
  local t = ttls[k]
  if (not t) or t < ms then ttls[k] = ms end
end
local delta = 0
local k, a = 4, 2
while a <= #ARGV do
  local h, bk, nops = ARGV[a], KEYS[k], tonumber(ARGV[a + 8])
  local cur = redis.call('HGET', bk, h)
  local ok
  if ARGV[a + 1] == '' then ok = not cur else ok = cur == ARGV[a + 1] end
  local rc = ARGV[a + 2]
  if ok and rc ~= '' then
    local nas = ARGV[a + 3]
    local r = resets[nas]
    if r == nil then
      r = redis.call('HGET', KEYS[3], nas)
      if r then r = '=' .. r else r = '-' end
      resets[nas] = r
    end
    ok = r == rc
  end
  if ok then
    local new, d, ttl = ARGV[a + 4], tonumber(ARGV[a + 5]), ARGV[a + 6]
    local retouch = ARGV[a + 7] ~= '' or not cur
    if new == '' then
      redis.call('HDEL', bk, h)
    else
      redis.call('HSET', bk, h, new)
      if retouch then later(bk, ttl) end
    end
    delta = delta + d
    if new ~= '' or d ~= 0 then later(KEYS[1], ttl) end
    for j = 0, nops - 1 do
      local op, f, ik = ARGV[a + 9 + 2 * j], ARGV[a + 10 + 2 * j], KEYS[k + 1 + j]
      local holder = redis.call('HGET', ik, f)
      if string.sub(op, 1, 1) == 'r' then
        if holder == h then redis.call('HDEL', ik, f) end
      else
        local take = (not holder) or holder == h or #holder ~= 8
        if not take then
          local hv = redis.call('HGET', sp .. bucket(holder), holder)
          if (not hv) or string.byte(hv, 1) ~= 1 or #hv < 25 then
            take = true
          else
            local c = cmp8(new, 18, hv, 18)
            if c == 0 then c = cmp8(new, 10, hv, 10) end
            take = c > 0
          end
        end
        local kept = take and holder == h
        if take and not kept then redis.call('HSET', ik, f, h) end
        if take and (retouch or not kept) then later(ik, ttl) end
        if #op > 1 and (retouch or not kept) then
          local len = string.sub(op, 2)
          if not lens[len] then
            redis.call('SADD', KEYS[2], len)
            lens[len] = true
          end
          later(KEYS[2], ttl)
        end
      end
    end
  end
  done[#done + 1] = ok and 1 or 0
  k, a = k + 1 + nops, a + 9 + 2 * nops
end
if delta ~= 0 then redis.call('INCRBY', KEYS[1], delta) end
for key, ms in pairs(ttls) do touch(key, ms) end
return done
