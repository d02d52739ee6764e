/*
 * fuzz_xml.c - libFuzzer target: an AWS XML reply (EC2, query services,
 * S3) through irfw_xml_to_json() (core/aws/xml.c), then the list helpers
 * callers read it with.  Input: the reply body, as is.
 */
#include "fuzz_common.h"

#include <cJSON.h>

#include "aws/xml.h"

/* Walk every value the way callers do, through the list helpers. */
static void walk(const cJSON *v, int depth)
{
	const cJSON *c;
	int n = irfw_json_list_len(v);

	FUZZ_ASSERT(depth <= IRFW_XML_MAX_DEPTH + 1);
	FUZZ_ASSERT(n >= 0);
	FUZZ_ASSERT(irfw_json_list_at(v, n) == NULL);
	FUZZ_ASSERT(irfw_json_list_at(v, -1) == NULL);
	for (int i = 0; i < n && i < 4; i++)
		FUZZ_ASSERT(irfw_json_list_at(v, i) != NULL);
	if (cJSON_IsString(v))
		FUZZ_ASSERT(v->valuestring != NULL);
	cJSON_ArrayForEach(c, v) walk(c, depth + 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[256];
	cJSON *doc = irfw_xml_to_json((const char *)data, size, err, sizeof(err));

	if (!doc) {
		/* Refused: the caller is always told why. */
		FUZZ_ASSERT(err[0] != '\0');
		return 0;
	}
	/* The root's children always come back as an object. */
	FUZZ_ASSERT(cJSON_IsObject(doc));
	walk(doc, 0);
	char *s = cJSON_PrintUnformatted(doc);
	FUZZ_ASSERT(s != NULL);
	cJSON_free(s);
	cJSON_Delete(doc);
	return 0;
}
