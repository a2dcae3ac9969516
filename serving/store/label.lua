-- Set fraud labels by transaction id; labels of unknown ids are kept aside.
local p, matched = ARGV[1], 0
for i = 2, #ARGV, 2 do
  local tid, fraud = ARGV[i], ARGV[i + 1]
  if redis.call('HEXISTS', p .. ':tx', tid) == 1 then
    matched = matched + 1
    if fraud == '1' then redis.call('HSET', p .. ':f', tid, '1') else redis.call('HDEL', p .. ':f', tid) end
  else
    redis.call('HSET', p .. ':unknown', tid, fraud)
  end
end
return matched
