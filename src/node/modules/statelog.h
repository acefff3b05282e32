/* Internal to the node: the state module's redo log (statelog.c).
 *
 * A save is one record appended to a log file, and is acknowledged then:
 * copied into the file's shared mapping (its first HCN_SLOG_MAP_BYTES,
 * allocated on the disk when the file starts), or written with one
 * write(2) past that, the bytes are in the kernel's page cache, so they
 * survive the node being killed (not an OS crash or a power loss).  The
 * store (SQLite) takes the records later, in groups: the drainer rotates
 * the log (appends go on in the other file), commits the newest record of
 * each process of the rotated one, then retires it (its header zeroed).
 * At open, whatever both files hold is read back (older file first) for the
 * caller to commit before it appends anything.
 *
 * Two files, <base>.0 and <base>.1, each a header (magic, version, a
 * generation number that grows by one at every rotation, a CRC-32) then
 * records: a 24-byte header (magic, CRC-32, value length, process id
 * length, kind, milliseconds) and the process id and value bytes.  The
 * CRC-32 (zlib's, computed with libdeflate) covers the file's generation,
 * the record's header after its CRC, the id and the value; a record that does
 * not check (torn by a kill in the middle of its write, so never acknowledged)
 * ends its file's replay (as does the zero-filled space after the last record).
 *
 * Newest record per process: the log keeps, in memory, each process's
 * newest record of the current file (pending) and of the rotated one
 * until it is retired (draining), so a read sees every acknowledged save
 * without waiting for the store. */
#ifndef HYPERC_NODE_STATELOG_H
#define HYPERC_NODE_STATELOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct hcn_slog hcn_slog;

/* The part of each log file that is mapped: records that fit there are
 * copied in without a system call; past it, each is a write(2). */
#define HCN_SLOG_MAP_BYTES (2u << 20)

/* What a record does to its process's row. */
typedef enum hcn_slog_kind {
    HCN_SLOG_SET = 1, /* the row's value becomes the record's bytes */
    HCN_SLOG_DEL = 2, /* the row goes (the record has no bytes) */
} hcn_slog_kind;

/* One process's newest record (of a group being drained): valid until
 * hcn_slog_retire. */
typedef struct hcn_slog_rec {
    const char *pid;
    hcn_slog_kind kind;
    const uint8_t *bytes;
    size_t len;
    int64_t ms; /* when it was appended (wall clock) */
} hcn_slog_rec;

/* Open (creating if missing) the log <base>.0 and <base>.1 and read back
 * what they hold: every intact record (each file up to its first record
 * that does not check, older generation first), newest per process, waits
 * in the draining group.  The caller commits that group
 * (hcn_slog_draining) and calls hcn_slog_retire before the first append.
 * NULL with a message in err (errno-based) when a file cannot be opened or
 * read. */
hcn_slog *hcn_slog_open(const char *base, char *err, size_t errlen);

/* Close the files and free everything; what was not retired stays in the
 * files (read back at the next open). */
void hcn_slog_close(hcn_slog *l);

/* Append one record for pid (kind SET with len bytes, or DEL with none)
 * with one copy into the mapping or one write(2), and make it pid's
 * newest.  Any thread, concurrently.
 * 0 once written (the save may be acknowledged); -1 with errno when the
 * write failed or was short (the file is cut back to before the record, so
 * nothing of it is read back) or no retire has followed the open.  *size,
 * if not NULL, gets the current file's size after the append. */
int hcn_slog_append(hcn_slog *l, hcn_slog_kind kind, const char *pid,
                    const void *bytes, size_t len, size_t *size);

/* pid's newest record not yet retired: true with its kind and (SET) a
 * malloc'd copy of its bytes in *bytes (NULL when len is 0) and *len;
 * false when the log has none (the store has the newest).  Any thread. */
bool hcn_slog_get(hcn_slog *l, const char *pid, hcn_slog_kind *kind,
                  uint8_t **bytes, size_t *len);

/* Start a drain: unless a rotated group is still waiting for its retire
 * (then that one is kept, to be committed again), move the current file's
 * records to the draining group and go on appending in the other file,
 * under a new generation.  Number of records in the draining group; -1
 * with errno when the other file cannot be started (nothing moved).  One
 * drainer at a time (the caller's own rule). */
int hcn_slog_rotate(hcn_slog *l);

/* The draining group: its records in *recs (n of them), in no particular
 * order (one per process).  Valid until hcn_slog_retire; only the drainer
 * calls it. */
void hcn_slog_draining(hcn_slog *l, const hcn_slog_rec **recs, size_t *n);

/* The draining group is in the store (committed): make the files it came
 * from read back nothing (a zeroed header; their mapped pages are kept
 * for the next generation) and forget it.  After an open, this also starts the
 * current file.  0, or -1 with errno (the group stays, to be retired again). */
int hcn_slog_retire(hcn_slog *l);

#endif
