// The room directory's atomic steps (Lua, run by Redis as one command each).
// Keys, all under one prefix P:
//   P alive            zset  node -> lease expiry (ms); renewed by the node's heartbeat
//   P rooms            set   room names with a session
//   P n:<node>         set   rooms a node holds
//   P r:<room>:meta    hash  sid (the epoch: one per room session), metadata, max, created, empty
//   P r:<room>:nodes   hash  node -> 1 (nodes holding the room)
//   P r:<room>:parts   hash  identity -> {"n":node,"s":sid,"i":<ParticipantInfo JSON>,"t":<Track[] JSON>}
// Events go to the room's channel as JSON (the delivery bridge's frames are msgpack).

/**
 * Shared Lua: a participant's entry, decoded, if it is still session `sid`'s and (node not '')
 * held by `node` (else nil): a session that moved to another node keeps its sid, and the node
 * it left must not touch the new node's entry.
 */
const OWN_ENTRY = `
local function own_entry(rk, identity, sid, node)
  local prev = redis.call('HGET', rk .. ':parts', identity)
  if not prev then return nil end
  local e = cjson.decode(prev)
  if e.s ~= sid then return nil end
  if node and node ~= '' and e.n ~= node then return nil end
  return e
end
`;

/** Shared Lua: removes one node from one room; returns 1 when that finished the room. */
const DROP_NODE_FROM_ROOM = `
local function drop_node(P, room, node, reaped)
  local rk = P .. 'r:' .. room
  local ch = P .. 'ch:' .. room
  local parts = redis.call('HGETALL', rk .. ':parts')
  for i = 1, #parts, 2 do
    local e = cjson.decode(parts[i + 1])
    if e.n == node then
      redis.call('HDEL', rk .. ':parts', parts[i])
      redis.call('PUBLISH', ch, cjson.encode({t='leave', id=parts[i], s=e.s, n=node, reaped=reaped}))
    end
  end
  redis.call('HDEL', rk .. ':nodes', node)
  redis.call('SREM', P .. 'n:' .. node, room)
  if redis.call('HLEN', rk .. ':nodes') == 0 then
    local sid = redis.call('HGET', rk .. ':meta', 'sid')
    local created = redis.call('HGET', rk .. ':meta', 'created')
    redis.call('DEL', rk .. ':meta', rk .. ':nodes', rk .. ':parts')
    redis.call('SREM', P .. 'rooms', room)
    redis.call('PUBLISH', ch, cjson.encode({t='finished', sid=sid}))
    return {room, sid or '', created or '0'}
  end
  return false
end
local function drop_node_everywhere(P, node, reaped)
  local finished = {}
  for _, room in ipairs(redis.call('SMEMBERS', P .. 'n:' .. node)) do
    local f = drop_node(P, room, node, reaped)
    if f then finished[#finished + 1] = f end
  end
  redis.call('DEL', P .. 'n:' .. node)
  redis.call('ZREM', P .. 'alive', node)
  return finished
end
`;

/**
 * ARGV: P, room, node, identity, sid, info, defaultMax, newRoomSid, now, leaseExpiry,
 * emptyTimeout, wantParts. Returns {'full', max} or {'ok', started, sid, metadata, max, created,
 * empty, parts (flat identity/json list; empty unless wantParts is '1': a node already
 * holding the room keeps its roster from the events, and a join would otherwise cost O(room)),
 * replacedNode, replacedSid}.
 */
export const ADMIT = `
local P, room, node, identity, sid, info = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local rk = P .. 'r:' .. room
redis.call('ZADD', P .. 'alive', ARGV[10], node)
local started = 0
if redis.call('EXISTS', rk .. ':meta') == 0 then
  redis.call('HSET', rk .. ':meta', 'sid', ARGV[8], 'metadata', '', 'max', ARGV[7], 'created', ARGV[9], 'empty', ARGV[11])
  redis.call('SADD', P .. 'rooms', room)
  started = 1
end
local max = tonumber(redis.call('HGET', rk .. ':meta', 'max')) or 0
local prev = redis.call('HGET', rk .. ':parts', identity)
local oldNode, oldSid = '', ''
if prev then
  local e = cjson.decode(prev)
  oldNode, oldSid = e.n, e.s
elseif max > 0 and redis.call('HLEN', rk .. ':parts') >= max then
  if started == 1 then redis.call('DEL', rk .. ':meta'); redis.call('SREM', P .. 'rooms', room) end
  return {'full', max}
end
redis.call('HSET', rk .. ':parts', identity, cjson.encode({n=node, s=sid, i=info}))
redis.call('HSET', rk .. ':nodes', node, '1')
redis.call('SADD', P .. 'n:' .. node, room)
redis.call('PUBLISH', P .. 'ch:' .. room, cjson.encode({t='join', id=identity, s=sid, n=node, i=info, oldSid=oldSid, oldNode=oldNode}))
local m = redis.call('HMGET', rk .. ':meta', 'sid', 'metadata', 'max', 'created', 'empty')
local parts = {}
if ARGV[12] == '1' then parts = redis.call('HGETALL', rk .. ':parts') end
return {'ok', started, m[1], m[2], m[3], m[4], m[5], parts, oldNode, oldSid}`;

/** ARGV: P, room, identity, sid, node ('' any). Removes the entry only if it is still this session's (on that node). */
export const LEAVE =
  OWN_ENTRY +
  `
local rk = ARGV[1] .. 'r:' .. ARGV[2]
local e = own_entry(rk, ARGV[3], ARGV[4], ARGV[5])
if not e then return 0 end
redis.call('HDEL', rk .. ':parts', ARGV[3])
redis.call('PUBLISH', ARGV[1] .. 'ch:' .. ARGV[2], cjson.encode({t='leave', id=ARGV[3], s=ARGV[4], n=e.n}))
return 1`;

/**
 * ARGV: P, room, identity, sid, field ('i' info or 't' tracks), value, node ('' any). Updates
 * one field of a participant's entry if the entry is still this session's (on that node).
 */
export const UPDATE_PART =
  OWN_ENTRY +
  `
local rk = ARGV[1] .. 'r:' .. ARGV[2]
local e = own_entry(rk, ARGV[3], ARGV[4], ARGV[7])
if not e then return 0 end
if ARGV[5] == 'i' then e.i = ARGV[6] else e.t = ARGV[6] end
redis.call('HSET', rk .. ':parts', ARGV[3], cjson.encode(e))
return 1`;

/** ARGV: P, room, metadata. */
export const SET_META = `
local rk = ARGV[1] .. 'r:' .. ARGV[2]
if redis.call('EXISTS', rk .. ':meta') == 0 then return 0 end
redis.call('HSET', rk .. ':meta', 'metadata', ARGV[3])
return 1`;

/**
 * ARGV: P, room, node, epoch. This node no longer holds the room; the room finishes when it
 * was the last node and the session is still the one this node joined (compare on the epoch).
 */
export const RELEASE =
  DROP_NODE_FROM_ROOM +
  `
local rk = ARGV[1] .. 'r:' .. ARGV[2]
if redis.call('HGET', rk .. ':meta', 'sid') ~= ARGV[4] then
  redis.call('SREM', ARGV[1] .. 'n:' .. ARGV[3], ARGV[2])
  return false
end
return drop_node(ARGV[1], ARGV[2], ARGV[3], 0)`;

/** ARGV: P, now. Every node whose lease has passed loses all it held; returns finished rooms. */
export const REAP =
  DROP_NODE_FROM_ROOM +
  `
local finished = {}
for _, node in ipairs(redis.call('ZRANGEBYSCORE', ARGV[1] .. 'alive', '-inf', ARGV[2], 'LIMIT', 0, 100)) do
  for _, f in ipairs(drop_node_everywhere(ARGV[1], node, 1)) do finished[#finished + 1] = f end
end
return finished`;

/** ARGV: P, node. A node starting or stopping: everything it held goes (nothing stale is inherited). */
export const FORGET_NODE = DROP_NODE_FROM_ROOM + `return drop_node_everywhere(ARGV[1], ARGV[2], 1)`;

/**
 * ARGV: P, room, node, roomSid, metadata, max, created, empty, leaseExpiry, then
 * identity/sid/info/tracks quadruples of this node's live participants. Redis came back (or lost our entries): put this
 * node's live state back, drop our entries that are no longer live, return the room's parts.
 */
export const RESYNC = `
local P, room, node = ARGV[1], ARGV[2], ARGV[3]
local rk = P .. 'r:' .. room
local ch = P .. 'ch:' .. room
redis.call('ZADD', P .. 'alive', ARGV[9], node)
if redis.call('EXISTS', rk .. ':meta') == 0 then
  redis.call('HSET', rk .. ':meta', 'sid', ARGV[4], 'metadata', ARGV[5], 'max', ARGV[6], 'created', ARGV[7], 'empty', ARGV[8])
  redis.call('SADD', P .. 'rooms', room)
end
redis.call('HSET', rk .. ':nodes', node, '1')
redis.call('SADD', P .. 'n:' .. node, room)
local live = {}
for i = 10, #ARGV, 4 do
  live[ARGV[i]] = true
  local prev = redis.call('HGET', rk .. ':parts', ARGV[i])
  local mine = true
  if prev then mine = cjson.decode(prev).n == node end
  if mine then
    redis.call('HSET', rk .. ':parts', ARGV[i], cjson.encode({n=node, s=ARGV[i + 1], i=ARGV[i + 2], t=ARGV[i + 3]}))
    if not prev then
      redis.call('PUBLISH', ch, cjson.encode({t='join', id=ARGV[i], s=ARGV[i + 1], n=node, i=ARGV[i + 2], oldSid='', oldNode='', re=1}))
    end
  end
end
local parts = redis.call('HGETALL', rk .. ':parts')
for i = 1, #parts, 2 do
  local e = cjson.decode(parts[i + 1])
  if e.n == node and not live[parts[i]] then
    redis.call('HDEL', rk .. ':parts', parts[i])
    redis.call('PUBLISH', ch, cjson.encode({t='leave', id=parts[i], s=e.s, n=node, reaped=1}))
  end
end
return {redis.call('HGET', rk .. ':meta', 'sid'), redis.call('HGETALL', rk .. ':parts')}`;
