-- Set fraud labels by transaction id; labels of unknown ids are kept aside.
-- ARGV: prefix, '1' when the seed marker must exist (else 'unseeded', nothing written),
-- then (txid, fraud) pairs.
local p, matched = ARGV[1], 0
if ARGV[2] == '1' and redis.call('EXISTS', p .. ':seed') == 0 then return 'unseeded' end
for i = 3, #ARGV, 2 do
  local tid, fraud = ARGV[i], ARGV[i + 1]
  if redis.call('HEXISTS', p .. ':tx', tid) == 1 then
    matched = matched + 1
    if fraud == '1' then redis.call('HSET', p .. ':f', tid, '1') else redis.call('HDEL', p .. ':f', tid) end
  else
    redis.call('HSET', p .. ':unknown', tid, fraud)
  end
end
return matched
