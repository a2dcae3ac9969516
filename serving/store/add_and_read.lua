-- Add a batch of events (idempotent by transaction id), then read each one's windows.
local p, n, read = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local cspan, tfrom, tto = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local function ev(k) local i = 7 + (k - 1) * 6 return ARGV[i], ARGV[i+1], ARGV[i+2], tonumber(ARGV[i+3]), ARGV[i+4], ARGV[i+5] end
for k = 1, n do
  local tid, cid, term, ts, amount, fraud = ev(k)
  if redis.call('HSETNX', p .. ':tx', tid, term) == 1 then
    redis.call('ZADD', p .. ':c:' .. cid, ts, tid .. ':' .. amount)
    redis.call('ZADD', p .. ':t:' .. term, ts, tid)
    if fraud == '1' then redis.call('HSET', p .. ':f', tid, '1') end
    if cspan > 0 then  -- keep two windows' worth: enough for late events, bounded memory
      redis.call('ZREMRANGEBYSCORE', p .. ':c:' .. cid, '-inf', '(' .. string.format('%.0f', ts - 2 * cspan))
      redis.call('ZREMRANGEBYSCORE', p .. ':t:' .. term, '-inf', '(' .. string.format('%.0f', ts - 2 * tfrom))
    end
  end
end
if not read then return n end
local out = {}
for k = 1, n do
  local tid, cid, term, ts = ev(k)
  local c = redis.call('ZRANGEBYSCORE', p .. ':c:' .. cid, '(' .. string.format('%.0f', ts - cspan), string.format('%.0f', ts), 'WITHSCORES')
  local t = redis.call('ZRANGEBYSCORE', p .. ':t:' .. term, '(' .. string.format('%.0f', ts - tfrom), string.format('%.0f', ts - tto), 'WITHSCORES')
  local f = {}
  for j = 1, #t, 2 do f[#f + 1] = redis.call('HGET', p .. ':f', t[j]) or '0' end
  out[k] = {c, t, f}
end
return out
