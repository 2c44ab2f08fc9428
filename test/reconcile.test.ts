import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { DirEntry } from '../src/cluster/directory.js';
import { markRoster, reconcile, type RemoteEntry } from '../src/cluster/reconcile.js';
import type { ParticipantInfo } from '../src/signal/messages.js';

// The roster of other nodes' participants brought in line with a directory read, when the
// read and the room's events (two Redis connections) may arrive in either order.

const info = (identity: string, sid: string, hidden = false): ParticipantInfo => ({
  sid,
  identity,
  name: '',
  metadata: '',
  joinedAt: 1,
  permission: { canPublish: true, canSubscribe: true, canPublishData: true, canUpdateMetadata: false, hidden, canPublishSources: [] },
});
const entry = (node: string, identity: string, sid: string, hidden = false): [string, DirEntry] => [identity, { node, sid, info: info(identity, sid, hidden), tracks: [] }];
const remoteOf = (...e: [string, string, string][]): Map<string, RemoteEntry> => new Map(e.map(([node, id, sid]) => [id, { node, info: info(id, sid) }]));
const sids = (m: Map<string, RemoteEntry>): string[] => [...m.values()].map((e) => e.info.sid).sort();

describe('reconcile (roster vs directory snapshot)', () => {
  test('right after an outage nothing is removed: another node may not have put its participants back yet', () => {
    const remote = remoteOf(['n2', 'alice', 'PA_a']);
    const snap = new Map([entry('n1', 'me', 'PA_me'), entry('n3', 'carol', 'PA_c')]);
    const c = reconcile(remote, snap, 'n1', markRoster(remote), new Set(), false);
    assert.deepEqual(sids(remote), ['PA_a', 'PA_c']);
    assert.deepEqual(c.left, []);
    assert.deepEqual(c.joined.map((i) => i.identity), ['carol']);
  });

  test('the later pass removes who is really gone, and announces it', () => {
    const remote = remoteOf(['n2', 'alice', 'PA_a'], ['n3', 'carol', 'PA_c']);
    const snap = new Map([entry('n3', 'carol', 'PA_c')]);
    const c = reconcile(remote, snap, 'n1', markRoster(remote), new Set(), true);
    assert.deepEqual(sids(remote), ['PA_c']);
    assert.deepEqual(c.left, [{ identity: 'alice', sid: 'PA_a' }]);
    assert.deepEqual(c.joined, []);
  });

  test('a join heard while the read was in flight is newer than the read: kept', () => {
    const remote = remoteOf();
    const mark = markRoster(remote);
    remote.set('dave', { node: 'n2', info: info('dave', 'PA_d') }); // event arrives first
    const c = reconcile(remote, new Map(), 'n1', mark, new Set(), true);
    assert.deepEqual(sids(remote), ['PA_d']);
    assert.deepEqual(c.left, []);
  });

  test('a leave heard while the read was in flight is never undone by the read', () => {
    const remote = remoteOf(['n2', 'alice', 'PA_a']);
    const mark = markRoster(remote);
    remote.delete('alice'); // leave event first
    const c = reconcile(remote, new Map([entry('n2', 'alice', 'PA_a')]), 'n1', mark, new Set(['PA_a']), true);
    assert.equal(remote.size, 0);
    assert.deepEqual(c.joined, []);
  });

  test('a session that joined and left during the read (not in the mark) is not brought back', () => {
    const remote = remoteOf();
    const c = reconcile(remote, new Map([entry('n2', 'eve', 'PA_e')]), 'n1', markRoster(remote), new Set(['PA_e']), false);
    assert.equal(remote.size, 0);
    assert.deepEqual(c.joined, []);
  });

  test('a replacement the events did not carry: the old session leaves, then the new one joins', () => {
    const remote = remoteOf(['n2', 'alice', 'PA_old']);
    const c = reconcile(remote, new Map([entry('n3', 'alice', 'PA_new')]), 'n1', markRoster(remote), new Set(), false);
    assert.deepEqual(sids(remote), ['PA_new']);
    assert.equal(remote.get('alice')?.node, 'n3');
    assert.deepEqual(c.left, [{ identity: 'alice', sid: 'PA_old' }]);
    assert.deepEqual(c.joined.map((i) => i.sid), ['PA_new']);
  });

  test("an identity that moved to this node leaves the roster without an announcement (its local join was one)", () => {
    const remote = remoteOf(['n2', 'alice', 'PA_old']);
    const c = reconcile(remote, new Map([entry('n1', 'alice', 'PA_here')]), 'n1', markRoster(remote), new Set(), true);
    assert.equal(remote.size, 0);
    assert.deepEqual(c, { joined: [], left: [] });
  });

  test('hidden participants are kept in the roster (addressable) but never announced', () => {
    const remote = remoteOf();
    const c = reconcile(remote, new Map([entry('n2', 'rec', 'PA_h', true)]), 'n1', markRoster(remote), new Set(), false);
    assert.equal(remote.get('rec')?.info.permission.hidden, true);
    assert.deepEqual(c.joined, []);
    const gone = reconcile(remote, new Map(), 'n1', markRoster(remote), new Set(), true);
    assert.equal(remote.size, 0);
    assert.deepEqual(gone.left, []);
  });
});
