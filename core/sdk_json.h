/*
 * sdk_json.h - the one shape of AWS results that plugins see, and the
 * pieces of the SDK's paginator that can be tested without AWS
 * (sdk_json.c).  Internal to libirfw.
 */
#ifndef IRFW_SDK_JSON_H
#define IRFW_SDK_JSON_H

#include <stdbool.h>

#include <cJSON.h>

#include "run.h"

/* Most pages irfw_aws_paginate() reads of one operation. */
#define IRFW_MAX_PAGES 1000

/*
 * Rewrite `res`, the successful reply of `service` `operation`, in place
 * into the shape irfw.h documents under irfw_aws_call(): the query
 * protocols' <Operation>Result wrapper lifted, the request id removed,
 * lists made arrays.  `caller` is the step on whose behalf the call was
 * made: a module built for ABI 1.0 or 1.1 keeps the wire's tree it was
 * written for (NULL: no module, the shape is applied).  JSON protocol
 * replies and NULL are left alone.
 */
void irfw_result_neutral(cJSON *res, const char *service, const char *operation,
                         const struct irfw_step *caller);

/*
 * The page after `res`: the request parameter to set (*param) and its
 * value (*token, pointing into res), by the rules irfw.h gives under
 * irfw_aws_paginate().  False on the last page.
 */
bool irfw_page_next(const cJSON *res, const char **param, const char **token);

#endif /* IRFW_SDK_JSON_H */
