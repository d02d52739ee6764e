/*
 * fuzz_finding.c - the finding parser behind `irfw --finding FILE`
 * (core/fleet.c): a GuardDuty finding, its EventBridge event, a Security
 * Hub ASFF finding, or a JSON array of them, read from a file as the CLI
 * reads it.  Seeds are in tests/fuzz/finding/.
 *
 * Asserted, for any input: the parser returns 0 or -1; on 0 it kept at
 * least one finding; every instance it added is a valid instance id that
 * has its findings recorded, and no instance is added twice.
 */
#include "fuzz_common.h"

#include "base/log.h"
#include "aws/names.h"
#include "fleet.h"
#include "run.h"

static struct fuzz_file finding;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	irfw_log_set_level(-1); /* quiet: the parser logs what it refuses */
	fuzz_file_open(&finding, "finding.json");
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct irfw_run r;

	fuzz_file_write(&finding, data, size);
	irfw_run_init(&r);
	int rc = irfw_fleet_add_findings(&r, finding.path);
	FUZZ_ASSERT(rc == 0 || rc == -1);
	if (rc == 0)
		FUZZ_ASSERT(r.findings != NULL);
	for (size_t i = 0; i < r.batch.n; i++) {
		const char *id = r.batch.targets[i]->id;
		FUZZ_ASSERT(irfw_valid_instance_id(id));
		FUZZ_ASSERT(irfw_fleet_findings_of(&r, id) != NULL);
		for (size_t k = 0; k < i; k++)
			FUZZ_ASSERT(strcmp(r.batch.targets[k]->id, id) != 0);
	}
	irfw_run_free(&r);
	return 0;
}
