// Package store is a node's durable state in badger. One process owns the
// directory (badger locks it). Every value begins with an encoding byte so
// the format can change without guessing.
//
// Key layout (prefix, then fields joined by '/'):
//
//	l/<swarm>/<index:8 bytes BE>  membership log record (wire.Signed JSON)
//	w/<swarm>                     local swarm facts: left, dissolved, pending leaves, fork
//	f/<swarm>/<index:8>/<hash>    proof of a fork of the swarm's log (membership.Fork), at most 16
//	a/<arrival:8 bytes BE>        inbox: a received message in local arrival order (node.InboxItem)
//	i/<msg id>/<arrival:8>        index from message ID to arrival (two senders may use one ID)
//	r/<arrival:8 bytes BE>        read mark for an inbox message
//	x/<arrival:8 bytes BE>        archive mark for an inbox message (kept by the prune of read ones)
//	m/<msg id>                    a message this node sent
//	o/<swarm>:<key>/<msg id>      outbox: an envelope waiting for one member (by key, in one swarm)
//	d/<msg id>/<swarm>:<key>      delivery status of a sent message to one member
//	n/<swarm>/<own key>/<stream>  last sequence number used (stream: *, !system or a member key)
//	q/<swarm>/<key>/<stream>      highest sequence number seen from a sender (stream: all or direct)
//	s/<swarm>/<key>/<msg id>      seen-ID set: a message is (swarm, sender key, ID); expires with it
//	v/<invite id>                 invites this node issued as master
//	u/<kind>/<name>               mutes: kind is s (swarm ID) or a (agent key)
//	dv/<domain>                   a name verified over WebPKI: the key its site named, and when
//	p/self                        this node's presence
//	k/, ks/                       an extension's (its ExtensionInfo.Prefixes; docs/architecture.md)
//	gh/...                        the GitHub layer's queue, cursors and dedupe (package github)
//	qb/<swarm>[/<sender key>]     unread inbox bytes of a swarm, of one sender in it (quotas)
//	sn/<swarm>                    log index through which membership records became inbox notices
//
// # Free space
//
// badger writes through memory-mapped files, so a full disk would kill the
// process (SIGBUS) instead of failing a write. Every update therefore
// checks the data directory's free space first and returns ErrLowSpace
// when it is short. There are two reserves:
//
//   - Update, UpdateLazy and UpdateThen keep Options.MinFree free
//     (DefaultMinFree): for everything a peer can make this node store.
//   - UpdateEssential and UpdateThenEssential only refuse below the much
//     smaller Options.EssentialFree (DefaultEssentialFree): for what the
//     user must always be able to do near a full disk, and which writes
//     little or frees space: read marks, deletes, the node's own sends
//     and their delivery bookkeeping.
package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/rs/zerolog"
)

// Encoding byte of every value written by this version.
const encJSON byte = 1

var (
	// ErrClosed is returned by every call after Close.
	ErrClosed = errors.New("store: closed")
	// ErrNotFound is returned by Get for a missing key.
	ErrNotFound = errors.New("store: not found")
)

// Store wraps a badger database.
type Store struct {
	db      *badger.DB
	log     zerolog.Logger
	mu      sync.RWMutex // guards closed against in-flight calls
	closed  bool
	stop    chan struct{}
	done    chan struct{}
	dir     string
	minFree int64
	essFree int64 // the hard floor of essential updates

	// Group commit: concurrent durable updates share one sync.
	smu       sync.Mutex
	scond     *sync.Cond
	requested uint64 // syncs asked for (each after its commit)
	synced    uint64 // every request up to this one is durable
	syncing   bool
	syncErr   error
}

// Options tune the store.
type Options struct {
	InMemory   bool          // tests of pure logic only
	GCInterval time.Duration // value-log GC period; 0 means 10 minutes
	// MinFree is the free space the data directory must keep for writes
	// to proceed; 0 means DefaultMinFree, negative turns the check off.
	MinFree int64
	// EssentialFree is the floor below which even essential updates
	// (UpdateEssential) are refused; 0 means DefaultEssentialFree. It is
	// never above MinFree.
	EssentialFree int64
}

// DefaultEssentialFree is the hard floor: below it nothing is written.
// It covers a memtable flush and a margin for the small writes essential
// updates make.
const DefaultEssentialFree = 8 << 20

// DefaultMinFree covers what badger may touch in one go: both memtables
// and a whole value-log file, plus a margin. badger writes through
// memory-mapped files whose blocks are allocated on first touch, so on a
// full disk a write kills the process with SIGBUS instead of returning an
// error; refusing writes below this reserve turns that into ErrLowSpace.
const DefaultMinFree = 2*(4<<20) + (16 << 20) + (8 << 20)

// ErrLowSpace: the data directory is (nearly) full; nothing was written.
var ErrLowSpace = errors.New("store: not enough free disk space")

// Open opens (or creates) the store in dir.
func Open(dir string, o Options, log zerolog.Logger) (*Store, error) {
	bo := badger.DefaultOptions(dir).
		// Durability is per transaction: Update syncs after its commit,
		// UpdateLazy does not (see there).
		WithSyncWrites(false).
		WithLogger(badgerLogger{log}).
		// A small agent node holds little: keep memory low. Defaults use
		// 64 MB memtables x5 and a 256 MB block cache (none here; see below).
		WithMemTableSize(4 << 20).
		WithNumMemtables(2).
		WithIndexCacheSize(2 << 20).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithValueLogFileSize(16 << 20).
		WithValueThreshold(4 << 10).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithCompactL0OnClose(true).
		WithMetricsEnabled(false).
		// Under a sustained load (swarm bench --load, 1000 msg/s) the
		// daemon's memory grew without bound: badger's pool of table
		// builders keeps up to 8 allocators as large as the tables they
		// built, and compression and the block cache add their copies.
		// Small tables, no compression (our values are small signed JSON)
		// and reads straight from the mapped files keep it flat.
		WithCompression(options.None).
		WithBlockCacheSize(0).
		WithBaseTableSize(256 << 10)
	if o.InMemory {
		bo = bo.WithInMemory(true).WithDir("").WithValueDir("")
	}
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s := &Store{db: db, log: log, stop: make(chan struct{}), done: make(chan struct{}), dir: dir, minFree: o.MinFree}
	s.scond = sync.NewCond(&s.smu)
	if s.minFree == 0 {
		s.minFree = DefaultMinFree
	}
	s.essFree = o.EssentialFree
	if s.essFree == 0 {
		s.essFree = DefaultEssentialFree
	}
	if s.minFree >= 0 && s.essFree > s.minFree {
		s.essFree = s.minFree
	}
	if o.InMemory {
		s.minFree, s.essFree = -1, -1
	}
	gc := o.GCInterval
	if gc == 0 {
		gc = 10 * time.Minute
	}
	go s.gcLoop(gc)
	return s, nil
}

func (s *Store) gcLoop(every time.Duration) {
	defer close(s.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			for s.db.RunValueLogGC(0.5) == nil {
			}
		}
	}
}

// Close closes the store; a second Close returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	close(s.stop)
	<-s.done
	// badger's Close flushes memtables and compacts; with the directory
	// gone or the disk failing it can retry for ever. Bound it: the
	// process is about to exit, and what was acked was already synced.
	errc := make(chan error, 1)
	go func() { errc <- s.db.Close() }()
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case err := <-errc:
		return err
	case <-t.C:
		s.log.Error().Dur("after", closeTimeout).Str("dir", s.dir).Msg("store close did not finish; giving up (is the data directory still there?)")
		return ErrCloseTimeout
	}
}

// closeTimeout bounds Close. A healthy close (badger flushing its
// memtable) can take seconds on a loaded machine; the bound is for a store
// whose directory or disk is gone, where it would never finish.
var closeTimeout = 8 * time.Second

// ErrCloseTimeout: Close gave up waiting for badger; durable writes were
// already synced when they returned.
var ErrCloseTimeout = errors.New("store: close timed out")

// Update runs fn in a read-write transaction and commits it durably: when
// it returns nil, the write survives a crash of the process or the machine.
func (s *Store) Update(fn func(*Tx) error) error { return s.update(fn, true, nil, false) }

// UpdateEssential is Update for what must work near a full disk (read
// marks, deletes, the node's own sends): it is refused only below the
// essential floor, not below the full reserve. See the package doc.
func (s *Store) UpdateEssential(fn func(*Tx) error) error { return s.update(fn, true, nil, true) }

// UpdateLazyEssential is UpdateLazy under the essential floor.
func (s *Store) UpdateLazyEssential(fn func(*Tx) error) error { return s.update(fn, false, nil, true) }

// UpdateThenEssential is UpdateThen under the essential floor.
func (s *Store) UpdateThenEssential(fn func(*Tx) error, committed func()) error {
	return s.update(fn, true, committed, true)
}

// UpdateLazy commits without waiting for the disk: the write survives the
// process being killed (it is in the OS's page cache) but may be lost if
// the machine loses power. For bookkeeping whose loss only repeats work,
// such as marking an outbox entry delivered (a resend is deduplicated).
func (s *Store) UpdateLazy(fn func(*Tx) error) error { return s.update(fn, false, nil, false) }

// UpdateThen commits, calls committed (which may start work that depends on
// the write being visible, such as sending it to a peer) and then syncs,
// so that work overlaps the disk wait. It returns once the write is durable.
func (s *Store) UpdateThen(fn func(*Tx) error, committed func()) error {
	return s.update(fn, true, committed, false)
}

func (s *Store) update(fn func(*Tx) error, durable bool, committed func(), essential bool) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	reserve := s.minFree
	if essential {
		reserve = s.essFree
	}
	if err := s.checkSpace(reserve); err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		err := s.db.Update(func(t *badger.Txn) error { return fn(&Tx{t: t}) })
		if errors.Is(err, badger.ErrConflict) && attempt < 8 {
			continue
		}
		if err != nil {
			return err
		}
		if committed != nil {
			committed()
		}
		if durable {
			return s.groupSync()
		}
		return nil
	}
}

// groupSync returns once a sync that began after the caller's commit has
// finished. Callers that arrive while a sync runs share the next one, so
// N concurrent durable writers cost about two syncs, not N: group commit.
func (s *Store) groupSync() error {
	s.smu.Lock()
	defer s.smu.Unlock()
	s.requested++
	ticket := s.requested
	for s.synced < ticket {
		if s.syncing {
			s.scond.Wait()
			continue
		}
		// Everything requested so far was committed before it was
		// requested: one sync covers it all.
		s.syncing = true
		target := s.requested
		s.smu.Unlock()
		err := s.db.Sync()
		s.smu.Lock()
		s.syncing = false
		s.synced, s.syncErr = target, err
		s.scond.Broadcast()
	}
	return s.syncErr
}

// checkSpace refuses a write when the data directory's file system has
// less than reserve free (see DefaultMinFree).
func (s *Store) checkSpace(reserve int64) error {
	if reserve < 0 {
		return nil
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &st); err != nil {
		return nil // cannot tell: let badger try
	}
	free := int64(st.Bavail) * int64(st.Bsize)
	if free < reserve {
		return fmt.Errorf("%w: %s has %d MB free, below the %d MB reserve; free some space", ErrLowSpace, s.dir, free>>20, reserve>>20)
	}
	return nil
}

// View runs fn in a read-only transaction.
func (s *Store) View(fn func(*Tx) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	return s.db.View(func(t *badger.Txn) error { return fn(&Tx{t: t}) })
}

// Tx is a transaction.
type Tx struct{ t *badger.Txn }

// Key joins parts with '/'.
func Key(parts ...string) []byte {
	var b bytes.Buffer
	for i, p := range parts {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(p)
	}
	return b.Bytes()
}

// Get reads key into v (JSON). It returns ErrNotFound for a missing key.
func (x *Tx) Get(key []byte, v any) error {
	it, err := x.t.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	return it.Value(func(b []byte) error { return decode(key, b, v) })
}

// Has reports whether key exists.
func (x *Tx) Has(key []byte) (bool, error) {
	_, err := x.t.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	return err == nil, err
}

// Put writes v (JSON) at key.
func (x *Tx) Put(key []byte, v any) error { return x.PutTTL(key, v, 0) }

// PutTTL writes v at key; it disappears after ttl (0 keeps it).
func (x *Tx) PutTTL(key []byte, v any, ttl time.Duration) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	e := badger.NewEntry(append([]byte(nil), key...), append([]byte{encJSON}, b...))
	if ttl > 0 {
		e = e.WithTTL(ttl)
	}
	return x.t.SetEntry(e)
}

// Delete removes key.
func (x *Tx) Delete(key []byte) error { return x.t.Delete(append([]byte(nil), key...)) }

// Scan calls fn for each key under prefix in order, starting after `after`
// (nil for the start), until fn returns false or an error.
func (x *Tx) Scan(prefix, after []byte, fn func(key []byte, decode func(v any) error) (bool, error)) error {
	start := prefix
	if after != nil {
		start = append(append([]byte(nil), after...), 0)
	}
	return x.iterate(prefix, start, false, fn)
}

// ScanReverse is Scan from the last key under prefix backwards.
func (x *Tx) ScanReverse(prefix []byte, fn func(key []byte, decode func(v any) error) (bool, error)) error {
	return x.iterate(prefix, append(append([]byte(nil), prefix...), 0xff), true, fn)
}

func (x *Tx) iterate(prefix, seek []byte, reverse bool, fn func(key []byte, decode func(v any) error) (bool, error)) error {
	it := x.t.NewIterator(badger.IteratorOptions{PrefetchValues: false, Prefix: prefix, Reverse: reverse})
	defer it.Close()
	for it.Seek(seek); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		k := item.KeyCopy(nil)
		more, err := fn(k, func(v any) error {
			return item.Value(func(b []byte) error { return decode(k, b, v) })
		})
		if err != nil || !more {
			return err
		}
	}
	return nil
}

func decode(key, b []byte, v any) error {
	if len(b) == 0 || b[0] != encJSON {
		return fmt.Errorf("store: value at %q has unknown encoding", key)
	}
	return json.Unmarshal(b[1:], v)
}

type badgerLogger struct{ l zerolog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error().Msgf("badger: "+f, a...) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn().Msgf("badger: "+f, a...) }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Debug().Msgf("badger: "+f, a...) }
func (b badgerLogger) Debugf(f string, a ...any)   { b.l.Trace().Msgf("badger: "+f, a...) }
