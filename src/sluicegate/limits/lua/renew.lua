-- Extend one request's concurrency leases so a long stream is not reclaimed as crashed.
-- KEYS: the concurrency ZSETs; ARGV[1] now or '' (server clock), ARGV[2] lease id, ARGV[3] TTL s.
-- A lease already reclaimed is not re-added (its slot may be someone else's now).
-- Returns how many leases were still held and extended.
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local lease, ttl = ARGV[2], tonumber(ARGV[3])
local held = 0
for i = 1, #KEYS do
  local score = redis.call('ZSCORE', KEYS[i], lease)
  if score and tonumber(score) > now then
    redis.call('ZADD', KEYS[i], 'XX', string.format('%.17g', now + ttl), lease)
    redis.call('PEXPIRE', KEYS[i], math.ceil(ttl * 1000))
    held = held + 1
  end
end
return held
