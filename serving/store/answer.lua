-- Step 5 of Store.score: keep the first answer of each transaction (the first one wins).
-- ARGV: prefix, then (txid, answer) pairs; an answer is 'probability:is_fraud:version'.
-- Returns per pair '' when this answer was kept, else the answer kept before it.
local p, out = ARGV[1], {}
for i = 2, #ARGV, 2 do
  if redis.call('HSETNX', p .. ':a', ARGV[i], ARGV[i + 1]) == 1 then out[#out + 1] = ''
  else out[#out + 1] = redis.call('HGET', p .. ':a', ARGV[i]) end
end
return out
