-- Add a batch of events (idempotent by transaction id), then aggregate each one's windows.
-- Options: ARGV[3] read (1|0; 0 adds only, without pruning: the seed); ARGV[4] '1' when the
-- seed marker must exist (else 'unseeded', nothing written).
if ARGV[4] == '1' and redis.call('EXISTS', p .. ':seed') == 0 then return 'unseeded' end
local read = ARGV[3] == '1'
for k = 1, n do add(k, read) end
save_watermark()
if not read then return n end
local out = {}
for k = 1, n do out[k] = aggregates(k) end
return out
