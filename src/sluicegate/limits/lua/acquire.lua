-- Admit one request against all its demands at once, or refuse without changing anything.
-- Mirrors gcra.py and budget.py; change them together.
--
-- KEYS[i]     the counter of demand i (rate: TAT string; budget: spent, per period; concurrency: ZSET)
-- ARGV[1]     now in epoch seconds, or '' to use the Redis server clock (one clock for all nodes)
-- ARGV[2]     lease id (ZSET member for concurrency slots)
-- ARGV[3]     lease TTL in seconds
-- ARGV[3+6(i-1)+1..6]  kind ('r' rate, 'b' budget, 'c' concurrency), amount, limit,
--             rate: period seconds; budget: key TTL in ms (0 = keep forever); concurrency: unused,
--             unit, units: an elastic demand is amount = base + unit * units (units 0: not elastic);
--             budgets lower the units of every elastic demand to what the tightest can cover (>= 1)
-- Returns {admitted 1|0, now, granted units (0: none elastic), then per demand: wait, remaining, reset}
--   wait: '0' fits; rate: seconds to wait or 'inf' (amount > limit); budget/concurrency: '1' refused
--   remaining/reset: rate: after this request when admitted; budget: left (limit - spent) and the
--   amount asked; concurrency: ''
local EPSILON = 1e-5
local BUDGET_EPSILON = 1e-9
local now
if ARGV[1] == '' then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
else
  now = tonumber(ARGV[1])
end
local lease = ARGV[2]
local lease_ttl = tonumber(ARGV[3])
local n = #KEYS
local kinds, amounts, limits, xs, states = {}, {}, {}, {}, {}
local units, unit_amounts, stored_budget = {}, {}, {}
local waits, fresh = {}, {}
local refused = false
local granted = 0

-- Elastic demands (mirrors MemoryLimiter._clamp and budget.units_that_fit): the fewest units asked,
-- lowered to what every elastic budget can cover beside its fixed part, at least 1.
for i = 1, n do
  local b = 3 + (i - 1) * 6
  kinds[i], amounts[i], limits[i], xs[i] = ARGV[b + 1], tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4])
  unit_amounts[i], units[i] = tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])
  if units[i] > 0 and (granted == 0 or units[i] < granted) then granted = units[i] end
end
if granted > 0 then
  local asked = granted
  for i = 1, n do
    if units[i] > 0 and kinds[i] == 'b' then
      stored_budget[i] = redis.call('GET', KEYS[i])  -- read once: the check below reuses it
      local spent = tonumber(stored_budget[i] or '0')
      local base = amounts[i] - unit_amounts[i] * units[i]
      local fit = math.floor((limits[i] + BUDGET_EPSILON - spent - base) / unit_amounts[i])
      if fit < granted then granted = fit end
    end
  end
  if granted < 1 then granted = 1 end
  if granted ~= asked then
    for i = 1, n do
      if units[i] > 0 then
        amounts[i] = amounts[i] - unit_amounts[i] * units[i] + unit_amounts[i] * granted
      end
    end
  end
end

for i = 1, n do
  local kind, amount, limit, x = kinds[i], amounts[i], limits[i], xs[i]
  local wait = '0'
  if kind == 'r' then
    local tat = tonumber(redis.call('GET', KEYS[i]) or now)
    if tat < now then tat = now end
    states[i] = tat
    if amount > 0 then
      if amount > limit then
        wait = 'inf'
      else
        local w = tat + amount * x / limit - x - now
        if w > EPSILON then wait = string.format('%.17g', w) end
      end
    end
  elseif kind == 'b' then
    local stored = stored_budget[i]
    if stored == nil then stored = redis.call('GET', KEYS[i]) end
    local spent = tonumber(stored or '0')
    states[i], fresh[i] = spent, not stored
    if not (spent + amount <= limit + BUDGET_EPSILON) then wait = '1' end
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    local busy = redis.call('ZCARD', KEYS[i])
    states[i] = busy
    if busy + 1 > limit then wait = '1' end
  end
  if wait ~= '0' then refused = true end
  waits[i] = wait
end

if not refused then
  for i = 1, n do
    local kind, amount = kinds[i], amounts[i]
    if kind == 'r' then
      if amount > 0 then
        local tat = states[i] + amount * xs[i] / limits[i]
        states[i] = tat
        redis.call('SET', KEYS[i], string.format('%.17g', tat), 'PX', math.ceil((tat - now) * 1000) + 1)
      end
    elseif kind == 'b' then
      local spent = string.format('%.17g', states[i] + amount)
      if fresh[i] and xs[i] > 0 then
        redis.call('SET', KEYS[i], spent, 'PX', xs[i])
      else
        redis.call('SET', KEYS[i], spent, 'KEEPTTL')
      end
    else
      redis.call('ZADD', KEYS[i], string.format('%.17g', now + lease_ttl), lease)
      redis.call('PEXPIRE', KEYS[i], math.ceil(lease_ttl * 1000))
    end
  end
end

local out = {refused and 0 or 1, string.format('%.17g', now), granted}
for i = 1, n do
  local remaining, reset = '', ''
  if kinds[i] == 'b' then
    remaining = string.format('%.17g', limits[i] - states[i])
    reset = string.format('%.17g', amounts[i])
  elseif kinds[i] == 'r' then
    local tat, limit, period = states[i], limits[i], xs[i]
    if limit > 0 then
      remaining = string.format('%.17g', (now + period - tat) * limit / period)
    else
      remaining = '0'
    end
    reset = string.format('%.17g', tat - now)
  end
  out[#out + 1] = waits[i]
  out[#out + 1] = remaining
  out[#out + 1] = reset
end
return out
