-- Shared by add_and_read.lua and score.lua (prepended to each: Redis scripts cannot include).
-- ARGV: prefix, n, option, option, kc, kc (lo, hi) customer windows, kt, kt terminal windows,
-- then the customer's and the terminal's previous-event window (a count, 0 or 1, and its
-- (lo, hi)), then n events (txid, customer, terminal, ts, amount, fraud). A window is
-- (t - lo, t - hi].
-- Keys: p:tx txid -> payload, p:c:<customer> and p:t:<terminal> (sorted sets by time),
-- p:f fraud labels, p:newest the newest event time, p:seed the seed marker. After the
-- windows: the number of events kept per customer and terminal, then the events.
local p, n = ARGV[1], tonumber(ARGV[2])
local function windows(at)
  local k, w = tonumber(ARGV[at]), {}
  for j = 1, k do w[j] = {tonumber(ARGV[at + 2 * j - 1]), tonumber(ARGV[at + 2 * j])} end
  return w, at + 2 * k + 1
end
local cw, next_at = windows(5)
local tw, cp_at = windows(next_at)
local cp, tp_at = windows(cp_at)
local tp, keep_at = windows(tp_at)
-- At most this many events per customer and terminal: memory stays bounded, and no event's
-- date can make another one go (a count, not a time, decides what is dropped).
local keep, first = tonumber(ARGV[keep_at]), keep_at + 1
local function reach(w) local lo, hi = 0, math.huge
  for j = 1, #w do lo = math.max(lo, w[j][1]); hi = math.min(hi, w[j][2]) end
  return lo, hi end
local function both(a, b) local w = {}
  for j = 1, #a do w[#w + 1] = a[j] end
  for j = 1, #b do w[#w + 1] = b[j] end
  return w end
local creach = reach(both(cw, cp))
local tfrom, tto = reach(both(tw, tp))
local function ev(k) local i = first + (k - 1) * 6 return ARGV[i], ARGV[i+1], ARGV[i+2], tonumber(ARGV[i+3]), ARGV[i+4], ARGV[i+5] end
local function us(x) return string.format('%.0f', x) end
-- What a retry must resend: terminal, customer, time and the exact amount text.
local function payload(k) local i = first + (k - 1) * 6
  return ARGV[i+2] .. ':' .. ARGV[i+1] .. ':' .. ARGV[i+3] .. ':' .. ARGV[i+4] end
-- The newest event time before this call (the skew limit's reference, with the clock).
local newest = tonumber(redis.call('GET', p .. ':newest'))
local latest = newest

-- Add event k unless its id is known; prune: keep the `keep` latest events of its
-- customer and of its terminal.
local function add(k, prune)
  local tid, cid, term, ts, amount, fraud = ev(k)
  if redis.call('HSETNX', p .. ':tx', tid, payload(k)) == 0 then return end
  redis.call('ZADD', p .. ':c:' .. cid, ts, tid .. ':' .. amount)
  redis.call('ZADD', p .. ':t:' .. term, ts, tid)
  if fraud == '1' then redis.call('HSET', p .. ':f', tid, '1') end
  if prune then
    redis.call('ZREMRANGEBYRANK', p .. ':c:' .. cid, 0, -(keep + 1))
    redis.call('ZREMRANGEBYRANK', p .. ':t:' .. term, 0, -(keep + 1))
  end
  if not latest or ts > latest then latest = ts end
end

local function save_watermark()
  if latest and latest ~= newest then redis.call('SET', p .. ':newest', us(latest)) end
end

-- The time of the latest of `events` (ZRANGEBYSCORE WITHSCORES, ascending) in window w of
-- time ts, as text; 'n' when there is none.
local function previous(events, w, ts)
  local found = 'n'
  for i = 1, #events, 2 do
    local at = tonumber(events[i + 1])
    if at > ts - w[1] and at <= ts - w[2] then found = events[i + 1] end
  end
  return found
end

-- Event k's windows: per customer window count and sum, per terminal window count and frauds,
-- then the previous event's time of the customer and of the terminal, when configured.
local function aggregates(k)
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
  local fraud, wfrom, wto = {}, reach(tw)
  for i = 1, #t, 2 do
    local at = tonumber(t[i + 1])
    -- Only the events a fraud window holds (the previous-event window reaches nearer t).
    if at > ts - wfrom and at <= ts - wto then fraud[i] = redis.call('HEXISTS', p .. ':f', t[i]) else fraud[i] = 0 end
  end
  for j = 1, #tw do
    local count, frauds, lo, hi = 0, 0, ts - tw[j][1], ts - tw[j][2]
    for i = 1, #t, 2 do
      local at = tonumber(t[i + 1])
      if at > lo and at <= hi then count = count + 1; frauds = frauds + fraud[i] end
    end
    row[#row + 1] = count; row[#row + 1] = frauds
  end
  if #cp == 1 then row[#row + 1] = previous(c, cp[1], ts) end
  if #tp == 1 then row[#row + 1] = previous(t, tp[1], ts) end
  return row
end
