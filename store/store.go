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
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
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
	// db is replaced when the store changes mode (see "Quiet when idle"):
	// every call holds mu's read lock while it uses db, the change holds
	// the write lock.
	db      *badger.DB
	log     zerolog.Logger
	mu      sync.RWMutex // guards closed, db, busy and broken against in-flight calls
	closed  bool
	stop    chan struct{}
	wg      sync.WaitGroup // background loops
	dir     string
	minFree int64
	essFree int64 // the hard floor of essential updates

	// Quiet when idle.
	bo         badger.Options // the database's options but for its compactors
	dirLock    *os.File       // held from Open to Close, across reopens
	quietAfter time.Duration  // <= 0: always busy (in memory)
	busy       bool           // badger's compactors run
	broken     error          // a reopen failed: every call returns it
	lastWrite  atomic.Int64   // UnixNano of the last commit
	lastCheck  atomic.Int64   // UnixNano of the last look at L0 while quiet
	switching  atomic.Bool    // a change of mode is under way
	followUp   atomic.Bool    // a look at L0 is due after the last writes

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
	// QuietAfter is how long the store goes without a commit before it
	// stops badger's compactors; 0 means DefaultQuietAfter, negative keeps
	// them running.
	QuietAfter time.Duration
}

// Quiet when idle. badger's compactors poll every 50 ms whether there is
// work, for as long as the database is open: on an idle daemon that was
// all of its CPU (0.4-0.6% of a core; none with them off; issue #17).
// badger has no option to slow them and no call to stop them, so the
// store runs in two modes and reopens the database to change:
//
//   - busy: two compactors. The store opens busy, and becomes busy again
//     as soon as level 0 holds a table (a memtable was flushed: 4 MB of
//     writes since the last compaction), which it looks at after a commit,
//     at most every l0CheckEvery; badger would stall writes at 8 tables.
//   - quiet: no compactors. It goes quiet after QuietAfter without a
//     commit, once level 0 is empty and no level is over its target.
//     Writes work as ever, into the memtable.
//
// A change closes the database (which flushes the memtable and compacts
// level 0) and opens it again, under mu's write lock: calls wait for it
// (tens of milliseconds; it happens once per burst of writes). The
// store's lock (a flock on STORE.LOCK in the data directory) is held
// across reopens, so no other process can take the store between.

// DefaultQuietAfter is how long a store waits without commits before it
// stops the compactors.
const DefaultQuietAfter = 30 * time.Second

// busyCompactors is the compactors of a busy store (badger's minimum).
const busyCompactors = 2

// l0CheckEvery bounds how often a quiet store looks at level 0.
const l0CheckEvery = 100 * time.Millisecond

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
		WithNumCompactors(busyCompactors).
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
	quiet := o.QuietAfter
	if quiet == 0 {
		quiet = DefaultQuietAfter
	}
	var lock *os.File
	if o.InMemory {
		bo = bo.WithInMemory(true).WithDir("").WithValueDir("")
		quiet = -1 // reopening would lose it all
	} else {
		var err error
		if lock, err = lockDir(dir); err != nil {
			return nil, fmt.Errorf("open store %s: %w", dir, err)
		}
	}
	db, err := badger.Open(bo)
	if err != nil {
		if lock != nil {
			lock.Close()
		}
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	s := &Store{db: db, log: log, stop: make(chan struct{}), dir: dir, minFree: o.MinFree,
		bo: bo, dirLock: lock, quietAfter: quiet, busy: true}
	s.lastWrite.Store(time.Now().UnixNano())
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
	s.wg.Add(1)
	go s.gcLoop(gc)
	if s.quietAfter > 0 {
		s.wg.Add(1)
		go s.watchIdle()
	}
	return s, nil
}

// lockFile is the store's own lock in its directory, beside badger's.
const lockFile = "STORE.LOCK"

// lockDir takes the store's lock: a flock on lockFile, which a reopen
// does not release (badger's own lock, a flock on the directory, is
// released by its Close). Its error is worded as badger's, which callers
// recognise.
func lockDir(dir string) (*os.File, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("Cannot acquire directory lock on %q.  Another process is using this Badger database. error: %w", dir, err)
	}
	return f, nil
}

func (s *Store) gcLoop(every time.Duration) {
	defer s.wg.Done()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			s.mu.RLock()
			if !s.closed && s.broken == nil {
				for s.db.RunValueLogGC(0.5) == nil {
				}
			}
			s.mu.RUnlock()
		}
	}
}

// noteWrite runs after each commit, under mu's read lock: a quiet store
// whose level 0 got a table becomes busy.
func (s *Store) noteWrite() {
	now := time.Now().UnixNano()
	s.lastWrite.Store(now)
	if s.busy || s.quietAfter <= 0 || now-s.lastCheck.Load() < int64(l0CheckEvery) {
		return
	}
	s.lastCheck.Store(now)
	if s.db.Levels()[0].NumTables > 0 && s.switching.CompareAndSwap(false, true) {
		// Added under the read lock: Close (write lock) cannot be waiting
		// for the loops yet.
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.setMode(true) }()
		return
	}
	// badger flushes a full memtable in the background, after the commit
	// that filled it: look once more when the writes have had time to
	// land, or a burst that ends with the flush leaves level 0 waiting
	// for the next write. One timer per second of writing; none when idle.
	if s.followUp.CompareAndSwap(false, true) {
		time.AfterFunc(time.Second, func() { s.followUp.Store(false); s.checkL0() })
	}
}

// checkL0 makes a quiet store busy when level 0 holds a table.
func (s *Store) checkL0() {
	s.mu.RLock()
	full := !s.closed && s.broken == nil && !s.busy && s.db.Levels()[0].NumTables > 0
	s.mu.RUnlock()
	if full && s.switching.CompareAndSwap(false, true) {
		s.setMode(true)
	}
}

// watchIdle runs while the store is busy: it makes it quiet once nothing
// was committed for quietAfter and the compactors have nothing left to do.
func (s *Store) watchIdle() {
	defer s.wg.Done()
	t := time.NewTicker(s.quietAfter / 2)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if time.Since(time.Unix(0, s.lastWrite.Load())) < s.quietAfter || !s.settled() {
			continue
		}
		if s.switching.CompareAndSwap(false, true) && s.setMode(false) {
			return // setMode(true) starts the next watcher
		}
	}
}

// settled reports whether badger has no compaction to do.
func (s *Store) settled() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed || s.broken != nil {
		return false
	}
	for _, l := range s.db.Levels() {
		if (l.Level == 0 && l.NumTables > 0) || l.Adjusted >= 1 {
			return false
		}
	}
	return true
}

// setMode reopens the database busy or quiet (the caller won switching)
// and reports whether the store is now in that mode.
func (s *Store) setMode(busy bool) bool {
	defer s.switching.Store(false)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.broken != nil {
		return false
	}
	if s.busy == busy {
		return true
	}
	t0 := time.Now()
	if err := s.db.Close(); err != nil {
		s.log.Warn().Err(err).Msg("store: closing the database to change mode")
	}
	compactors := 0
	if busy {
		compactors = busyCompactors
	}
	db, err := badger.Open(s.bo.WithNumCompactors(compactors))
	if err != nil {
		s.broken = fmt.Errorf("store: reopening %s: %w", s.dir, err)
		s.log.Error().Err(err).Str("dir", s.dir).Msg("store: could not reopen the database; the node must be restarted")
		return false
	}
	s.db, s.busy = db, busy
	if busy {
		s.wg.Add(1)
		go s.watchIdle()
	}
	s.log.Debug().Bool("busy", busy).Dur("took", time.Since(t0)).Msg("store: compactors switched")
	return true
}

// isBusy reports whether badger's compactors run (tests).
func (s *Store) isBusy() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.busy
}

// Close closes the store; a second Close returns nil.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	// No call is in flight (each holds the read lock) and none starts
	// (closed); the loops end on stop or find closed.
	s.mu.Unlock()
	s.wg.Wait()
	if s.broken != nil {
		s.unlockDir()
		return s.broken
	}
	// badger's Close flushes memtables and compacts; with the directory
	// gone or the disk failing it can retry for ever. Bound it: the
	// process is about to exit, and what was acked was already synced.
	errc := make(chan error, 1)
	go func() { errc <- s.db.Close() }()
	t := time.NewTimer(closeTimeout)
	defer t.Stop()
	select {
	case err := <-errc:
		s.unlockDir()
		return err
	case <-t.C:
		s.log.Error().Dur("after", closeTimeout).Str("dir", s.dir).Msg("store close did not finish; giving up (is the data directory still there?)")
		return ErrCloseTimeout
	}
}

// unlockDir releases the directory lock (closing the file drops the flock).
func (s *Store) unlockDir() {
	if s.dirLock != nil {
		s.dirLock.Close()
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
	if s.broken != nil {
		return s.broken
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
		s.noteWrite()
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
	free, err := freeBytes(s.dir)
	if err != nil {
		return nil // cannot tell: let badger try
	}
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
	if s.broken != nil {
		return s.broken
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
