-- Add a batch of events (idempotent by transaction id), then aggregate each one's windows.
-- ARGV: prefix, n, read (1|0), kc, kc (lo, hi) customer windows, kt, kt terminal windows,
-- then n events (txid, customer, terminal, ts, amount, fraud). A window is (t - lo, t - hi].
local p, n, read = ARGV[1], tonumber(ARGV[2]), ARGV[3] == '1'
local function windows(at)
  local k, w = tonumber(ARGV[at]), {}
  for j = 1, k do w[j] = {tonumber(ARGV[at + 2 * j - 1]), tonumber(ARGV[at + 2 * j])} end
  return w, at + 2 * k + 1
end
local cw, next_at = windows(4)
local tw, first = windows(next_at)
local function reach(w) local lo, hi = 0, math.huge
  for j = 1, #w do lo = math.max(lo, w[j][1]); hi = math.min(hi, w[j][2]) end
  return lo, hi end
local creach = reach(cw)
local tfrom, tto = reach(tw)
local function ev(k) local i = first + (k - 1) * 6 return ARGV[i], ARGV[i+1], ARGV[i+2], tonumber(ARGV[i+3]), ARGV[i+4], ARGV[i+5] end
local function us(x) return string.format('%.0f', x) end
for k = 1, n do
  local tid, cid, term, ts, amount, fraud = ev(k)
  if redis.call('HSETNX', p .. ':tx', tid, term) == 1 then
    redis.call('ZADD', p .. ':c:' .. cid, ts, tid .. ':' .. amount)
    redis.call('ZADD', p .. ':t:' .. term, ts, tid)
    if fraud == '1' then redis.call('HSET', p .. ':f', tid, '1') end
    if read then  -- keep two windows' worth: enough for late events, bounded memory
      redis.call('ZREMRANGEBYSCORE', p .. ':c:' .. cid, '-inf', '(' .. us(ts - 2 * creach))
      redis.call('ZREMRANGEBYSCORE', p .. ':t:' .. term, '-inf', '(' .. us(ts - 2 * tfrom))
    end
  end
end
if not read then return n end
local out = {}
for k = 1, n do
  local _, cid, term, ts = ev(k)
  local row = {}
  local c = redis.call('ZRANGEBYSCORE', p .. ':c:' .. cid, '(' .. us(ts - creach), us(ts), 'WITHSCORES')
  for j = 1, #cw do
    local count, sum, lo, hi = 0, 0.0, ts - cw[j][1], ts - cw[j][2]
    for i = 1, #c, 2 do
      local at = tonumber(c[i + 1])
      if at > lo and at <= hi then count = count + 1; sum = sum + tonumber(string.match(c[i], ':(.*)$')) end
    end
    row[#row + 1] = count; row[#row + 1] = string.format('%.17g', sum)
  end
  local t = redis.call('ZRANGEBYSCORE', p .. ':t:' .. term, '(' .. us(ts - tfrom), us(ts - tto), 'WITHSCORES')
  local fraud = {}
  for i = 1, #t, 2 do fraud[i] = redis.call('HEXISTS', p .. ':f', t[i]) end
  for j = 1, #tw do
    local count, frauds, lo, hi = 0, 0, ts - tw[j][1], ts - tw[j][2]
    for i = 1, #t, 2 do
      local at = tonumber(t[i + 1])
      if at > lo and at <= hi then count = count + 1; frauds = frauds + fraud[i] end
    end
    row[#row + 1] = count; row[#row + 1] = frauds
  end
  out[k] = row
end
return out
