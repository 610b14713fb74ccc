// Package riblt is a rateless invertible Bloom lookup table (Rateless
// IBLT; Yang, Gilad, Alizadeh, "Practical Rateless Set Reconciliation",
// SIGCOMM 2024, arXiv 2402.02668): set reconciliation whose cost grows
// with the difference between two sets, not with their size, and needs no
// estimate of that difference in advance. goatdb uses it on first contact,
// when a peer has no resume point: the server streams the coded symbols of
// its commit-id set, the client decodes both directions of the difference
// as they arrive.
//
// # Elements and keying
//
// Elements are 64-bit short ids of commit ids under a Key chosen afresh
// for each request (NewKey): SipHash-2-4 of the 32-byte id under the
// key's first half. Each element also has a checksum, SipHash-2-4 of its
// 8 bytes under the key's second half, which marks a symbol holding a
// single element ("pure") and seeds the element's mapping. Without the
// key nobody can aim at a short-id collision, a checksum collision or a
// mapping: a collision found for one request is useless for the next.
//
// # The mapping and the symbols
//
// A set has an endless stream of coded symbols, indexed from 0. Element e
// joins symbol j with probability 1/(1+j/2), drawn from a generator
// seeded with e's checksum (see mapping): every element joins symbol 0,
// two thirds join symbol 1, and about 2·ln(m/2)+1 of the first m. Each
// element walks its own mapping by geometric-like skips, so m symbols of
// N elements cost O(N·log m), never O(N·m).
//
//	symbol j = ( Sum   = XOR of the short ids e joining j,
//	             Check = XOR of their checksums,
//	             Count = how many there are )
//
//	index:      0    1    2    3    4    5    6    7  ...
//	element a:  x    x         x                   x
//	element b:  x         x              x
//	element c:  x    x    x         x
//
// The symbols are a pure function of the set and the key (Encoder): any
// range [a, b) of them can be produced again, statelessly, in any order;
// a Stream produces them one after another keeping each element's place.
//
// # Decoding
//
// The Decoder subtracts the local set's symbols from the remote ones as
// they arrive (what both hold cancels exactly), takes out the elements it
// has already decoded, and peels: a symbol with Count ±1 whose Check is
// the checksum of its Sum holds exactly one element, remote-only (+1) or
// local-only (-1); taking that element out of every symbol it joins may
// make others pure. The difference is decoded once every symbol received
// is empty. On average a difference of d elements needs (testdata/
// overhead_long.golden, 200–10,000 trials per d): 1 symbol when d=0 or 1,
// 1.61·d (2), 1.73·d (3), 1.79·d (5), 1.73·d (10), 1.63·d (20), 1.52·d
// (50), 1.45·d (100), 1.42·d (200), 1.39·d (500), 1.38·d (1000). A symbol
// takes 17–20 bytes in a run (AppendRun).
//
// # Costs
//
// BenchmarkSymbols and BenchmarkEncode measure, on a shared 2-core
// machine: the first 64 symbols of 10,000 elements in about 1.1–1.7 ms,
// of 100,000 in 15–33 ms (1,024 symbols: 2.5 ms and 26–45 ms); keying
// adds 72 ns per commit id (two SipHash-2-4). The client pays the same to
// compute its own symbols, in batches of 1, 4, 16, ... symbols, plus
// O(log m) per decoded element (BenchmarkReconcile).
//
// # Invariants and failure modes
//
//   - An Encoder's symbols depend only on its set and key; a Decoder's
//     results only on its local set, key and the symbols received.
//   - A Decoder never loops and never panics on what a peer sends: it
//     accepts at most DecoderOptions.MaxSymbols symbols, decodes at most
//     one element per symbol received, and spends at most 128 mapping
//     steps per symbol received on peeling; symbols outside those bounds
//     stop it with ErrBudget.
//   - Symbols no honest remote set could produce stop it with
//     ErrInconsistent: a count beyond ±MaxCount, an element peeled twice,
//     a "local-only" element the local set lacks, a pure symbol whose
//     element does not join it, symbols left over when symbol 0 (which
//     every element joins) is empty.
//   - Short-id collisions within one set stop it with ErrCollision: two
//     local elements sharing a short id, a remote-only element the local
//     set holds, a symbol 0 whose sums cancel but whose count does not
//     (two remote elements that are one short id).
//   - A collision across the sets, one commit on each side with one short
//     id, is invisible to the symbols: it decodes as "equal". So does any
//     difference under a false positive of the checksum (2^-64 per test).
//   - Done with a difference means: the remote set is the local one minus
//     LocalOnly plus RemoteOnly, and its symbols are exactly those
//     received.
//
// Every error is final. The protocol's answer to any of them, and to a
// decode whose result leaves the set digests unequal once the commits are
// exchanged (the cross-set collision), is the same: fall back to the
// Bloom-filter round for this request, and use a fresh key next time —
// under another key the same two commits collide with probability 2^-64.
//
// Encoders and Decoders are not safe for concurrent use; an Encoder whose
// elements are all added may produce symbols from several goroutines.
package riblt
