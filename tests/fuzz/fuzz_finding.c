/*
 * fuzz_finding.c - STUB for the GuardDuty / Security Hub finding parser
 * behind `irfw --finding FILE`, which does not exist yet.  scripts/fuzz.sh
 * compiles a file marked IRFW_FUZZ_STUB but does not run it.
 *
 * To finish it, once the parser exists: include its header, call it below
 * on `finding.path` (the input as a file in memory, the way --finding
 * reads it) or on the bytes directly if it takes a buffer, free what it
 * returns, assert what its header promises (FUZZ_ASSERT), and delete the
 * IRFW_FUZZ_STUB line.  Seeds are in tests/fuzz/finding/: a GuardDuty
 * finding as EventBridge delivers it, one as `aws guardduty get-findings`
 * prints it, and a Security Hub ASFF import event.
 */
#include "fuzz_common.h"

#define IRFW_FUZZ_STUB 1

static struct fuzz_file finding;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_file_open(&finding, "finding.json");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_file_write(&finding, data, size);
	/* TODO(lead): parse finding.path with the --finding parser here. */
	return 0;
}
