/*
 * verify.h - `irfw verify CASE_DIR [--s3]` (verify.c): re-check a case
 * record long after the run.
 *
 * For each instance folder (CASE_DIR itself when it holds journal.jsonl,
 * else each sub-folder that does):
 *   - every artifact of manifest.json is hashed again (SHA-256, size);
 *   - journal.jsonl's hash chain is checked line by line (casestore.h);
 *   - replaying the journal must give manifest.json (its artifact entries,
 *     steps, records and runs), and the manifest's journal_head,
 *     journal_lines and journal_bytes must be the journal's;
 *   - with --s3, every uploaded copy is compared with HeadObject
 *     (ChecksumMode=ENABLED): size, SHA-256 checksum, ETag and version,
 *     SSE-KMS key; and the uploaded manifest.json is read back: the journal
 *     head it quotes must be a line of the local chain, and its artifacts
 *     the local ones.
 *
 * It prints one table (artifact, local, chain, s3) per instance, or one
 * JSON document, and returns 0 when everything matches, 1 when anything
 * does not match or could not be checked, 2 for a usage error (no such
 * folder, not a case record).
 */
#ifndef IRFW_CORE_VERIFY_H
#define IRFW_CORE_VERIFY_H

#include <stdbool.h>

struct irfw_verify_opts {
	bool s3;   /* compare the uploaded copies */
	bool json; /* one JSON document on standard output */
	/* The AWS client, for --s3 (each may be NULL): region (else the one the
	 * upload step recorded for the bucket), profile, endpoint, CA file. */
	const char *region, *profile, *endpoint_url, *ca_file;
	bool s3_path_style;
};

int irfw_verify_case(const char *path, const struct irfw_verify_opts *o);

#endif /* IRFW_CORE_VERIFY_H */
