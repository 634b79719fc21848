/**
 * The failure converter of a deployment with a payload codec: a failure's message and stack trace go into its encoded
 * attributes (a payload, so the codec encrypts them) instead of plain text; Temporal shows "Encoded failure" until
 * they are decoded. Loaded by path (`failureConverterPath`) into the workflow bundle as well, so it imports nothing
 * but the SDK's common module.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
