-- Correct one admitted request's reservations to its real usage, and free its concurrency slots.
-- Mirrors gcra.gcra_adjust and the budget rule; change them together.
--
-- KEYS[i]   the counter of entry i (as in acquire.lua; budget keys carry the reserved period)
-- ARGV[1]   now in epoch seconds, or '' for the Redis server clock
-- ARGV[2]   lease id
-- ARGV[3..] one entry per key, variable length:
--           'r' delta limit period  (rate: move the TAT by delta units, never before now)
--           'b' delta               (budget: add delta, only while the period's key exists)
--           'c'                     (concurrency: remove this request's lease)
-- delta = real usage - reserved amount. Returns the number of entries.
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local lease = ARGV[2]
local a = 3
for i = 1, #KEYS do
  local kind = ARGV[a]
  if kind == 'r' then
    local delta, limit, period = tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
    a = a + 4
    local tat = tonumber(redis.call('GET', KEYS[i]) or now)
    if limit > 0 and not (tat <= now and delta < 0) then
      if tat < now then tat = now end
      tat = tat + delta * period / limit
      if tat > now then
        redis.call('SET', KEYS[i], string.format('%.17g', tat), 'PX', math.ceil((tat - now) * 1000) + 1)
      else
        redis.call('DEL', KEYS[i])
      end
    end
  elseif kind == 'b' then
    local delta = ARGV[a + 1]
    a = a + 2
    -- a past period that has expired is not brought back to life for a correction
    if redis.call('EXISTS', KEYS[i]) == 1 then
      redis.call('INCRBYFLOAT', KEYS[i], delta)
    end
  else
    a = a + 1
    redis.call('ZREM', KEYS[i], lease)
  end
end
return #KEYS
