/* Internal to hyperc: state slots, where an isolated worker saves its
 * process's state itself (docs/architecture.md, "Saves from isolated
 * processes").  Prefix hcw_slot_.
 *
 * A slot is one file the state module makes for a worker and the node hands
 * it on fd HCW_SLOT_FD; both map it (MAP_SHARED).  A save is a copy into the
 * file's pages, which are in the kernel's page cache once copied: as durable
 * against the node or the worker being killed as a record in the state log.
 * The file is sparse: only the pages a save touched take room.
 *
 * Layout (the magic and each half's head little-endian; the three shared
 * words u64 in the machine's order, written and read atomically):
 *
 *   0     magic 0x544f4c53 ("SLOT"), layout 1 (u32 each; the node's, once)
 *   64    seq: the newest value's sequence number (u64; the worker's,
 *         published after the value is whole)
 *   128   drained: the newest sequence number the node has put into the
 *         state log (u64; the node's)
 *   192   starts: how many asynchronous saves by message (SET_STATE_START)
 *         the node has stored (u64; the node's, after storing each)
 *   4096  half 0, then half 1 at 4096 + HCW_SLOT_HALF_BYTES: each a
 *         sequence number (u64), a length (u32), a CRC-32 of the three
 *         (libdeflate's, zlib's polynomial) over the sequence number,
 *         length and value, then the value
 *
 * The value of sequence number s is in half s & 1, so a writer never
 * touches the half holding the published value.  It starts over that half
 * (for s + 2) only after publishing s + 1, so a reader that copied the half
 * of s and then still sees s published knows the copy is whole (a seqlock
 * of two buffers); one that sees more tries again.  Every word is advice
 * from the node's side: the worker runs untrusted code, so the node checks
 * lengths, sequence numbers and the CRC, and what it reads is never more
 * than that process's own state.  The node writes its two words through
 * its mapping: the header's page is on the disk from the start (the magic
 * is written), and the worker's sandbox refuses madvise(MADV_REMOVE), the
 * one way to punch it out from a mapping. */
#ifndef HYPERC_WORKER_SLOT_H
#define HYPERC_WORKER_SLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The worker's descriptor on which the node hands it its slot (when its
 * argv says --state-slot). */
#define HCW_SLOT_FD 5
/* The most bytes a saved value may have to go into a slot; a bigger one is
 * saved by message. */
#define HCW_SLOT_VALUE_MAX (1u << 20)
#define HCW_SLOT_HEAD_BYTES 4096u
#define HCW_SLOT_HALF_HEAD 16u
#define HCW_SLOT_HALF_BYTES (HCW_SLOT_HALF_HEAD + HCW_SLOT_VALUE_MAX)
/* How much of each half is allocated on the disk when the slot is made
 * (hcw_slot_format): a save that fits never meets a full disk. */
#define HCW_SLOT_ALLOCATED (64u * 1024)
/* A slot file's size (and each side's mapping). */
#define HCW_SLOT_FILE_BYTES (HCW_SLOT_HEAD_BYTES + 2u * HCW_SLOT_HALF_BYTES)

/* Make fd (a new, empty file) a slot: sized (sparse), its header written.
 * 0, or -1 with errno. */
int hcw_slot_format(int fd);
/* Map the slot in fd (read and write, shared); NULL with errno (EINVAL: not
 * a slot of this layout, or a short file).  Undone by hcw_slot_unmap. */
uint8_t *hcw_slot_map(int fd);
void hcw_slot_unmap(uint8_t *map);

/* The worker: store `len` bytes as sequence number seq, which must be one
 * more than the last it stored (the first is 1), and publish it.  false
 * when len is over HCW_SLOT_VALUE_MAX (nothing written). */
bool hcw_slot_put(uint8_t *map, uint64_t seq, const void *bytes, size_t len);
/* The published sequence number (the worker's own, on start). */
uint64_t hcw_slot_seq(const uint8_t *map);

/* The node: the published value when its sequence number is above `after`:
 * 1 with a copy in *out (malloc'd, the caller's; NULL for an empty value),
 * its length and sequence number; 0 when there is nothing newer; -1 when
 * the slot does not hold a whole value (a bad length, sequence number or
 * CRC after a few tries), with the reason in why. */
int hcw_slot_take(const uint8_t *map, uint64_t after, uint8_t **out,
                  size_t *len, uint64_t *seq, char *why, size_t whylen);
/* The node's words: drained (read and written) and starts (added to). */
uint64_t hcw_slot_drained(const uint8_t *map);
void hcw_slot_set_drained(uint8_t *map, uint64_t seq);
void hcw_slot_started(uint8_t *map);
uint64_t hcw_slot_starts(const uint8_t *map);

#endif
