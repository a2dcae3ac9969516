-- Steps 1 to 4 of Store.score, atomically: conflicts, skew, add the unknown events, then per
-- event its answer ({0, answer}) or its windows to score it now ({1, aggregates...}).
-- Options: ARGV[3] 'skew:now' in microseconds ('' for none: an event may be dated after
-- max(newest, now) + skew at most); ARGV[4] '1' when the seed
-- marker must exist. Refusals write nothing: 'unseeded', {'conflict', ids...},
-- {'ahead', limit, ids...}.
if ARGV[4] == '1' and redis.call('EXISTS', p .. ':seed') == 0 then return 'unseeded' end
local known, conflicts = {}, {'conflict'}
for k = 1, n do
  local tid, _, term = ev(k)
  local stored = redis.call('HGET', p .. ':tx', tid)
  if stored then
    known[k] = true
    -- A value without ':' was written by an older version: the terminal alone.
    if stored ~= payload(k) and stored ~= term then conflicts[#conflicts + 1] = tid end
  end
end
if #conflicts > 1 then return conflicts end
local skew, now = string.match(ARGV[3], '^(%d+):(%d+)$')
if skew then
  local limit = math.max(newest or 0, tonumber(now)) + tonumber(skew)
  local ahead = {'ahead', us(limit)}
  for k = 1, n do
    local tid, _, _, ts = ev(k)
    if not known[k] and ts > limit then ahead[#ahead + 1] = tid end
  end
  if #ahead > 2 then return ahead end
end
for k = 1, n do if not known[k] then add(k, true) end end
save_watermark()
local out = {'ok'}
for k = 1, n do
  local answer = redis.call('HGET', p .. ':a', (ev(k)))
  if answer then out[k + 1] = {0, answer} else
    local row = aggregates(k)
    table.insert(row, 1, 1)
    out[k + 1] = row
  end
end
return out
