/*
 * twinfactory FMI 2.0 co-simulation runtime: see fmu_runtime.h.
 *
 * Rules enforced here for every model:
 *  - a set of a NaN/infinite value, of a value outside [min, max], of an
 *    output or local, or of a fixed parameter after initialisation returns
 *    fmi2Error with a log message and changes nothing (the whole call is
 *    validated before any value is applied);
 *  - fmi2DoStep splits the communication step into equal internal sub-steps
 *    of at most MODEL_MAX_SUBSTEP seconds, so results do not depend on the
 *    master's step size beyond the integration error of one sub-step;
 *  - FMU states are plain copies of ModelState; serialised states carry a
 *    header (magic, format version, size, model GUID) that is checked.
 */
#include "fmu_runtime.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STATE_MAGIC "TFST"
#define STATE_FORMAT_VERSION 1u
#define STATE_GUID_BYTES 64

typedef struct {
    char magic[4];
    unsigned int format_version;
    unsigned int state_size;
    char guid[STATE_GUID_BYTES];
} SerializedHeader;

/* ------------------------------------------------------------------ */
/* logging                                                             */
/* ------------------------------------------------------------------ */

void tf_log(ModelInstance *inst, fmi2Status status, const char *category,
            const char *format, ...) {
    char message[1024];
    va_list args;
    if (!inst || !inst->callbacks || !inst->callbacks->logger) return;
    if (status == fmi2OK && !inst->logging_on) return;
    va_start(args, format);
    vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    /* The logger treats its message as a format string: escape '%'. */
    {
        char escaped[2048];
        size_t j = 0;
        for (size_t k = 0; message[k] && j + 2 < sizeof(escaped); k++) {
            if (message[k] == '%') escaped[j++] = '%';
            escaped[j++] = message[k];
        }
        escaped[j] = '\0';
        inst->callbacks->logger(inst->callbacks->componentEnvironment,
                                inst->instance_name, status, category, escaped);
    }
}

static fmi2Status fail(ModelInstance *inst, const char *function, const char *format, ...) {
    char message[900];
    va_list args;
    va_start(args, format);
    vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    tf_log(inst, fmi2Error, "logStatusError", "%s: %s", function, message);
    return fmi2Error;
}

static const char *phase_name(Phase phase) {
    switch (phase) {
    case PHASE_INSTANTIATED: return "instantiated";
    case PHASE_INITIALIZATION: return "initialization mode";
    case PHASE_STEP_COMPLETE: return "step complete";
    case PHASE_TERMINATED: return "terminated";
    case PHASE_ERROR: return "error";
    }
    return "unknown";
}

/* ------------------------------------------------------------------ */
/* variable tables                                                     */
/* ------------------------------------------------------------------ */

static const VariableInfo *find_variable(const VariableInfo *table, size_t n,
                                         fmi2ValueReference vr, size_t *index) {
    for (size_t k = 0; k < n; k++) {
        if (table[k].vr == vr) {
            *index = k;
            return &table[k];
        }
    }
    return NULL;
}

static const char *causality_name(Causality c) {
    switch (c) {
    case CAUSALITY_PARAMETER: return "parameter";
    case CAUSALITY_CALCULATED_PARAMETER: return "calculatedParameter";
    case CAUSALITY_INPUT: return "input";
    case CAUSALITY_OUTPUT: return "output";
    case CAUSALITY_LOCAL: return "local";
    case CAUSALITY_INDEPENDENT: return "independent";
    }
    return "unknown";
}

/* May this variable be set in the instance's current phase? */
static fmi2Status check_settable(ModelInstance *inst, const char *function,
                                 const VariableInfo *var) {
    Phase phase = inst->s.phase;
    if (phase == PHASE_TERMINATED || phase == PHASE_ERROR) {
        return fail(inst, function, "cannot set '%s' in phase %s; call fmi2Reset first",
                    var->name, phase_name(phase));
    }
    switch (var->causality) {
    case CAUSALITY_INPUT:
        return fmi2OK;
    case CAUSALITY_PARAMETER:
        if (var->variability == VARIABILITY_TUNABLE) return fmi2OK;
        if (phase == PHASE_INSTANTIATED || phase == PHASE_INITIALIZATION) return fmi2OK;
        return fail(inst, function,
                    "parameter '%s' is fixed: set it before fmi2ExitInitializationMode "
                    "(or call fmi2Reset and set it again)", var->name);
    default:
        return fail(inst, function, "'%s' has causality %s and cannot be set; only inputs "
                    "and parameters can", var->name, causality_name(var->causality));
    }
}

static fmi2Status check_value(ModelInstance *inst, const char *function,
                              const VariableInfo *var, double value) {
    if (isnan(value) || isinf(value)) {
        return fail(inst, function, "'%s' = %g is not a finite number; nothing was changed",
                    var->name, value);
    }
    if (value < var->min || value > var->max) {
        return fail(inst, function,
                    "'%s' = %g %s is outside its range [%g, %g] %s; nothing was changed",
                    var->name, value, var->unit, var->min, var->max, var->unit);
    }
    return fmi2OK;
}

static void refresh_outputs(ModelInstance *inst) {
    if (!inst->s.outputs_stale) return;
    if (inst->s.phase == PHASE_INITIALIZATION) {
        if (model_initialize(inst) != fmi2OK) return;
    } else if (inst->s.phase != PHASE_STEP_COMPLETE) {
        return;
    }
    model_outputs(inst);
    inst->s.outputs_stale = 0;
}

static void load_start_values(ModelInstance *inst) {
    memset(&inst->s, 0, sizeof(inst->s));
    for (size_t k = 0; k < N_REALS; k++)
        inst->s.r[k] = isnan(REAL_VARIABLES[k].start) ? 0.0 : REAL_VARIABLES[k].start;
    for (size_t k = 0; k < N_INTEGERS; k++)
        inst->s.i[k] = isnan(INTEGER_VARIABLES[k].start) ? 0 : (int)INTEGER_VARIABLES[k].start;
    for (size_t k = 0; k < N_BOOLEANS; k++)
        inst->s.b[k] = isnan(BOOLEAN_VARIABLES[k].start) ? 0 : (int)BOOLEAN_VARIABLES[k].start;
    inst->s.phase = PHASE_INSTANTIATED;
    inst->s.outputs_stale = 1;
}

/* ------------------------------------------------------------------ */
/* inquiry, instantiation, lifecycle                                   */
/* ------------------------------------------------------------------ */

const char *fmi2GetTypesPlatform(void) { return fmi2TypesPlatform; }

const char *fmi2GetVersion(void) { return fmi2Version; }

fmi2Status fmi2SetDebugLogging(fmi2Component c, fmi2Boolean loggingOn, size_t nCategories,
                               const fmi2String categories[]) {
    ModelInstance *inst = (ModelInstance *)c;
    (void)nCategories;
    (void)categories;
    if (!inst) return fmi2Error;
    inst->logging_on = loggingOn ? 1 : 0;
    return fmi2OK;
}

fmi2Component fmi2Instantiate(fmi2String instanceName, fmi2Type fmuType, fmi2String fmuGUID,
                              fmi2String fmuResourceLocation,
                              const fmi2CallbackFunctions *functions, fmi2Boolean visible,
                              fmi2Boolean loggingOn) {
    ModelInstance *inst;
    (void)fmuResourceLocation;
    (void)visible;
    if (!functions || !functions->allocateMemory || !functions->freeMemory) return NULL;
    if (!instanceName || !instanceName[0]) {
        if (functions->logger)
            functions->logger(functions->componentEnvironment, "?", fmi2Error, "logStatusError",
                              "fmi2Instantiate: an instance name is required");
        return NULL;
    }
    if (fmuType != fmi2CoSimulation) {
        if (functions->logger)
            functions->logger(functions->componentEnvironment, instanceName, fmi2Error,
                              "logStatusError",
                              "fmi2Instantiate: this FMU supports co-simulation only");
        return NULL;
    }
    if (!fmuGUID || strcmp(fmuGUID, MODEL_GUID) != 0) {
        if (functions->logger)
            functions->logger(functions->componentEnvironment, instanceName, fmi2Error,
                              "logStatusError",
                              "fmi2Instantiate: GUID mismatch; the binary does not belong to this "
                              "modelDescription.xml (rebuild the FMU)");
        return NULL;
    }
    inst = (ModelInstance *)functions->allocateMemory(1, sizeof(ModelInstance));
    if (!inst) return NULL;
    inst->instance_name = (char *)functions->allocateMemory(strlen(instanceName) + 1, 1);
    if (!inst->instance_name) {
        functions->freeMemory(inst);
        return NULL;
    }
    strcpy(inst->instance_name, instanceName);
    inst->callbacks = functions;
    inst->logging_on = loggingOn ? 1 : 0;
    load_start_values(inst);
    return inst;
}

void fmi2FreeInstance(fmi2Component c) {
    ModelInstance *inst = (ModelInstance *)c;
    if (!inst) return;
    inst->callbacks->freeMemory(inst->instance_name);
    inst->callbacks->freeMemory(inst);
}

fmi2Status fmi2SetupExperiment(fmi2Component c, fmi2Boolean toleranceDefined,
                               fmi2Real tolerance, fmi2Real startTime,
                               fmi2Boolean stopTimeDefined, fmi2Real stopTime) {
    ModelInstance *inst = (ModelInstance *)c;
    (void)toleranceDefined;
    (void)tolerance;
    if (!inst) return fmi2Error;
    if (inst->s.phase != PHASE_INSTANTIATED)
        return fail(inst, "fmi2SetupExperiment", "only allowed after instantiation or reset, "
                    "not in phase %s", phase_name(inst->s.phase));
    if (!isfinite(startTime))
        return fail(inst, "fmi2SetupExperiment", "start time %g is not finite", startTime);
    if (stopTimeDefined && !(stopTime >= startTime))
        return fail(inst, "fmi2SetupExperiment", "stop time %g is before start time %g",
                    stopTime, startTime);
    inst->s.time = startTime;
    inst->stop_time = stopTime;
    inst->stop_time_defined = stopTimeDefined ? 1 : 0;
    return fmi2OK;
}

fmi2Status fmi2EnterInitializationMode(fmi2Component c) {
    ModelInstance *inst = (ModelInstance *)c;
    if (!inst) return fmi2Error;
    if (inst->s.phase != PHASE_INSTANTIATED)
        return fail(inst, "fmi2EnterInitializationMode", "not allowed in phase %s",
                    phase_name(inst->s.phase));
    inst->s.phase = PHASE_INITIALIZATION;
    inst->s.outputs_stale = 1;
    return fmi2OK;
}

fmi2Status fmi2ExitInitializationMode(fmi2Component c) {
    ModelInstance *inst = (ModelInstance *)c;
    if (!inst) return fmi2Error;
    if (inst->s.phase != PHASE_INITIALIZATION)
        return fail(inst, "fmi2ExitInitializationMode", "not allowed in phase %s",
                    phase_name(inst->s.phase));
    if (model_initialize(inst) != fmi2OK) {
        inst->s.phase = PHASE_ERROR;
        return fmi2Error;
    }
    inst->s.phase = PHASE_STEP_COMPLETE;
    model_outputs(inst);
    inst->s.outputs_stale = 0;
    return fmi2OK;
}

fmi2Status fmi2Terminate(fmi2Component c) {
    ModelInstance *inst = (ModelInstance *)c;
    if (!inst) return fmi2Error;
    if (inst->s.phase != PHASE_STEP_COMPLETE && inst->s.phase != PHASE_ERROR)
        return fail(inst, "fmi2Terminate", "not allowed in phase %s", phase_name(inst->s.phase));
    inst->s.phase = PHASE_TERMINATED;
    return fmi2OK;
}

fmi2Status fmi2Reset(fmi2Component c) {
    ModelInstance *inst = (ModelInstance *)c;
    if (!inst) return fmi2Error;
    load_start_values(inst);
    inst->stop_time_defined = 0;
    return fmi2OK;
}

/* ------------------------------------------------------------------ */
/* get / set                                                           */
/* ------------------------------------------------------------------ */

fmi2Status fmi2GetReal(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                       fmi2Real value[]) {
    ModelInstance *inst = (ModelInstance *)c;
    size_t index;
    if (!inst) return fmi2Error;
    if (nvr > 0 && (!vr || !value)) return fail(inst, "fmi2GetReal", "null array argument");
    refresh_outputs(inst);
    for (size_t k = 0; k < nvr; k++) {
        if (!find_variable(REAL_VARIABLES, N_REALS, vr[k], &index))
            return fail(inst, "fmi2GetReal", "no Real variable has value reference %u",
                        (unsigned)vr[k]);
        value[k] = inst->s.r[index];
    }
    return fmi2OK;
}

fmi2Status fmi2GetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                          fmi2Integer value[]) {
    ModelInstance *inst = (ModelInstance *)c;
    size_t index;
    if (!inst) return fmi2Error;
    if (nvr > 0 && (!vr || !value)) return fail(inst, "fmi2GetInteger", "null array argument");
    refresh_outputs(inst);
    for (size_t k = 0; k < nvr; k++) {
        if (!find_variable(INTEGER_VARIABLES, N_INTEGERS, vr[k], &index))
            return fail(inst, "fmi2GetInteger", "no Integer variable has value reference %u",
                        (unsigned)vr[k]);
        value[k] = inst->s.i[index];
    }
    return fmi2OK;
}

fmi2Status fmi2GetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                          fmi2Boolean value[]) {
    ModelInstance *inst = (ModelInstance *)c;
    size_t index;
    if (!inst) return fmi2Error;
    if (nvr > 0 && (!vr || !value)) return fail(inst, "fmi2GetBoolean", "null array argument");
    refresh_outputs(inst);
    for (size_t k = 0; k < nvr; k++) {
        if (!find_variable(BOOLEAN_VARIABLES, N_BOOLEANS, vr[k], &index))
            return fail(inst, "fmi2GetBoolean", "no Boolean variable has value reference %u",
                        (unsigned)vr[k]);
        value[k] = inst->s.b[index] ? fmi2True : fmi2False;
    }
    return fmi2OK;
}

fmi2Status fmi2GetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                         fmi2String value[]) {
    ModelInstance *inst = (ModelInstance *)c;
    (void)value;
    if (!inst) return fmi2Error;
    if (nvr == 0) return fmi2OK;
    return fail(inst, "fmi2GetString", "this model has no String variables (value reference %u)",
                (unsigned)vr[0]);
}

/* Validates every (vr, value) pair, then applies them all; returns fmi2Error
 * and changes nothing if any pair is invalid. */
static fmi2Status set_values(ModelInstance *inst, const char *function,
                             const VariableInfo *table, size_t n, const char *type_name,
                             const fmi2ValueReference vr[], size_t nvr, const double *values,
                             void (*apply)(ModelInstance *, size_t, double)) {
    size_t index;
    if (!inst) return fmi2Error;
    if (nvr > 0 && (!vr || !values)) return fail(inst, function, "null array argument");
    for (size_t k = 0; k < nvr; k++) {
        const VariableInfo *var = find_variable(table, n, vr[k], &index);
        if (!var)
            return fail(inst, function, "no %s variable has value reference %u", type_name,
                        (unsigned)vr[k]);
        if (check_settable(inst, function, var) != fmi2OK) return fmi2Error;
        if (check_value(inst, function, var, values[k]) != fmi2OK) return fmi2Error;
    }
    for (size_t k = 0; k < nvr; k++) {
        find_variable(table, n, vr[k], &index);
        apply(inst, index, values[k]);
    }
    if (nvr > 0) inst->s.outputs_stale = 1;
    return fmi2OK;
}

static void apply_real(ModelInstance *inst, size_t index, double value) {
    inst->s.r[index] = value;
}
static void apply_integer(ModelInstance *inst, size_t index, double value) {
    inst->s.i[index] = (int)value;
}
static void apply_boolean(ModelInstance *inst, size_t index, double value) {
    inst->s.b[index] = value != 0.0;
}

fmi2Status fmi2SetReal(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                       const fmi2Real value[]) {
    return set_values((ModelInstance *)c, "fmi2SetReal", REAL_VARIABLES, N_REALS, "Real", vr,
                      nvr, value, apply_real);
}

static fmi2Status set_converted(ModelInstance *inst, const char *function,
                                const VariableInfo *table, size_t n, const char *type_name,
                                const fmi2ValueReference vr[], size_t nvr, const int value[],
                                void (*apply)(ModelInstance *, size_t, double), int boolean) {
    double *converted;
    fmi2Status status;
    if (!inst) return fmi2Error;
    if (nvr == 0) return fmi2OK;
    if (!vr || !value) return fail(inst, function, "null array argument");
    converted = (double *)inst->callbacks->allocateMemory(nvr, sizeof(double));
    if (!converted) return fail(inst, function, "out of memory");
    for (size_t k = 0; k < nvr; k++)
        converted[k] = boolean ? (value[k] != 0) : (double)value[k];
    status = set_values(inst, function, table, n, type_name, vr, nvr, converted, apply);
    inst->callbacks->freeMemory(converted);
    return status;
}

fmi2Status fmi2SetInteger(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                          const fmi2Integer value[]) {
    return set_converted((ModelInstance *)c, "fmi2SetInteger", INTEGER_VARIABLES, N_INTEGERS,
                         "Integer", vr, nvr, value, apply_integer, 0);
}

fmi2Status fmi2SetBoolean(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                          const fmi2Boolean value[]) {
    return set_converted((ModelInstance *)c, "fmi2SetBoolean", BOOLEAN_VARIABLES, N_BOOLEANS,
                         "Boolean", vr, nvr, value, apply_boolean, 1);
}

fmi2Status fmi2SetString(fmi2Component c, const fmi2ValueReference vr[], size_t nvr,
                         const fmi2String value[]) {
    ModelInstance *inst = (ModelInstance *)c;
    (void)value;
    if (!inst) return fmi2Error;
    if (nvr == 0) return fmi2OK;
    return fail(inst, "fmi2SetString", "this model has no String variables (value reference %u)",
                (unsigned)vr[0]);
}

/* ------------------------------------------------------------------ */
/* FMU state                                                           */
/* ------------------------------------------------------------------ */

fmi2Status fmi2GetFMUstate(fmi2Component c, fmi2FMUstate *FMUstate) {
    ModelInstance *inst = (ModelInstance *)c;
    ModelState *copy;
    if (!inst) return fmi2Error;
    if (!FMUstate) return fail(inst, "fmi2GetFMUstate", "null state pointer");
    copy = (ModelState *)*FMUstate;
    if (!copy) {
        copy = (ModelState *)inst->callbacks->allocateMemory(1, sizeof(ModelState));
        if (!copy) return fail(inst, "fmi2GetFMUstate", "out of memory");
    }
    *copy = inst->s;
    *FMUstate = copy;
    return fmi2OK;
}

fmi2Status fmi2SetFMUstate(fmi2Component c, fmi2FMUstate FMUstate) {
    ModelInstance *inst = (ModelInstance *)c;
    if (!inst) return fmi2Error;
    if (!FMUstate) return fail(inst, "fmi2SetFMUstate", "null state");
    inst->s = *(const ModelState *)FMUstate;
    return fmi2OK;
}

fmi2Status fmi2FreeFMUstate(fmi2Component c, fmi2FMUstate *FMUstate) {
    ModelInstance *inst = (ModelInstance *)c;
    if (!inst) return fmi2Error;
    if (!FMUstate || !*FMUstate) return fmi2OK;
    inst->callbacks->freeMemory(*FMUstate);
    *FMUstate = NULL;
    return fmi2OK;
}

fmi2Status fmi2SerializedFMUstateSize(fmi2Component c, fmi2FMUstate FMUstate, size_t *size) {
    ModelInstance *inst = (ModelInstance *)c;
    (void)FMUstate;
    if (!inst || !size) return fmi2Error;
    *size = sizeof(SerializedHeader) + sizeof(ModelState);
    return fmi2OK;
}

fmi2Status fmi2SerializeFMUstate(fmi2Component c, fmi2FMUstate FMUstate,
                                 fmi2Byte serializedState[], size_t size) {
    ModelInstance *inst = (ModelInstance *)c;
    SerializedHeader header;
    if (!inst) return fmi2Error;
    if (!FMUstate || !serializedState) return fail(inst, "fmi2SerializeFMUstate", "null argument");
    if (size < sizeof(header) + sizeof(ModelState))
        return fail(inst, "fmi2SerializeFMUstate", "buffer of %lu bytes is too small; "
                    "fmi2SerializedFMUstateSize says %lu", (unsigned long)size,
                    (unsigned long)(sizeof(header) + sizeof(ModelState)));
    memset(&header, 0, sizeof(header));
    memcpy(header.magic, STATE_MAGIC, 4);
    header.format_version = STATE_FORMAT_VERSION;
    header.state_size = (unsigned int)sizeof(ModelState);
    strncpy(header.guid, MODEL_GUID, STATE_GUID_BYTES - 1);
    memcpy(serializedState, &header, sizeof(header));
    memcpy(serializedState + sizeof(header), FMUstate, sizeof(ModelState));
    return fmi2OK;
}

fmi2Status fmi2DeSerializeFMUstate(fmi2Component c, const fmi2Byte serializedState[],
                                   size_t size, fmi2FMUstate *FMUstate) {
    ModelInstance *inst = (ModelInstance *)c;
    SerializedHeader header;
    ModelState *copy;
    if (!inst) return fmi2Error;
    if (!serializedState || !FMUstate)
        return fail(inst, "fmi2DeSerializeFMUstate", "null argument");
    if (size != sizeof(header) + sizeof(ModelState))
        return fail(inst, "fmi2DeSerializeFMUstate", "serialised state has %lu bytes, expected "
                    "%lu: it was not made by this FMU", (unsigned long)size,
                    (unsigned long)(sizeof(header) + sizeof(ModelState)));
    memcpy(&header, serializedState, sizeof(header));
    if (memcmp(header.magic, STATE_MAGIC, 4) != 0 ||
        header.format_version != STATE_FORMAT_VERSION ||
        header.state_size != sizeof(ModelState))
        return fail(inst, "fmi2DeSerializeFMUstate", "not a serialised state of format %u",
                    STATE_FORMAT_VERSION);
    header.guid[STATE_GUID_BYTES - 1] = '\0';
    if (strncmp(header.guid, MODEL_GUID, STATE_GUID_BYTES - 1) != 0)
        return fail(inst, "fmi2DeSerializeFMUstate", "state belongs to model %s, not %s",
                    header.guid, MODEL_GUID);
    copy = (ModelState *)*FMUstate;
    if (!copy) {
        copy = (ModelState *)inst->callbacks->allocateMemory(1, sizeof(ModelState));
        if (!copy) return fail(inst, "fmi2DeSerializeFMUstate", "out of memory");
    }
    memcpy(copy, serializedState + sizeof(header), sizeof(ModelState));
    *FMUstate = copy;
    return fmi2OK;
}

fmi2Status fmi2GetDirectionalDerivative(fmi2Component c, const fmi2ValueReference vUnknown_ref[],
                                        size_t nUnknown, const fmi2ValueReference vKnown_ref[],
                                        size_t nKnown, const fmi2Real dvKnown[],
                                        fmi2Real dvUnknown[]) {
    (void)vUnknown_ref; (void)nUnknown; (void)vKnown_ref; (void)nKnown; (void)dvKnown;
    (void)dvUnknown;
    return fail((ModelInstance *)c, "fmi2GetDirectionalDerivative",
                "not provided (providesDirectionalDerivative=false)");
}

/* ------------------------------------------------------------------ */
/* co-simulation                                                       */
/* ------------------------------------------------------------------ */

fmi2Status fmi2SetRealInputDerivatives(fmi2Component c, const fmi2ValueReference vr[],
                                       size_t nvr, const fmi2Integer order[],
                                       const fmi2Real value[]) {
    (void)vr; (void)nvr; (void)order; (void)value;
    return fail((ModelInstance *)c, "fmi2SetRealInputDerivatives",
                "not supported (canInterpolateInputs=false); inputs are held constant over a "
                "step");
}

fmi2Status fmi2GetRealOutputDerivatives(fmi2Component c, const fmi2ValueReference vr[],
                                        size_t nvr, const fmi2Integer order[],
                                        fmi2Real value[]) {
    (void)vr; (void)nvr; (void)order; (void)value;
    return fail((ModelInstance *)c, "fmi2GetRealOutputDerivatives",
                "not supported (maxOutputDerivativeOrder=0)");
}

fmi2Status fmi2DoStep(fmi2Component c, fmi2Real currentCommunicationPoint,
                      fmi2Real communicationStepSize,
                      fmi2Boolean noSetFMUStatePriorToCurrentPoint) {
    ModelInstance *inst = (ModelInstance *)c;
    double t, h, tolerance, substep;
    long n_substeps;
    (void)noSetFMUStatePriorToCurrentPoint;
    if (!inst) return fmi2Error;
    if (inst->s.phase != PHASE_STEP_COMPLETE)
        return fail(inst, "fmi2DoStep", "not allowed in phase %s", phase_name(inst->s.phase));
    t = currentCommunicationPoint;
    h = communicationStepSize;
    if (!isfinite(t) || !isfinite(h) || h <= 0.0)
        return fail(inst, "fmi2DoStep", "step from t=%g with size %g: the size must be a "
                    "positive finite number", t, h);
    tolerance = 1e-9 * fmax(1.0, fabs(inst->s.time));
    if (fabs(t - inst->s.time) > tolerance)
        return fail(inst, "fmi2DoStep", "communication point %.17g does not match the FMU "
                    "time %.17g", t, inst->s.time);
    if (inst->stop_time_defined && t + h > inst->stop_time + tolerance)
        return fail(inst, "fmi2DoStep", "step to %g passes the stop time %g", t + h,
                    inst->stop_time);
    if (h / MODEL_MAX_SUBSTEP > 1e8)
        return fail(inst, "fmi2DoStep", "step size %g s is too large (more than 1e8 internal "
                    "steps of %g s)", h, MODEL_MAX_SUBSTEP);

    model_event(inst);
    n_substeps = (long)ceil(h / MODEL_MAX_SUBSTEP - 1e-9);
    if (n_substeps < 1) n_substeps = 1;
    substep = h / (double)n_substeps;
    for (long k = 0; k < n_substeps; k++) model_advance(inst, substep);
    inst->s.time = t + h;
    model_outputs(inst);
    inst->s.outputs_stale = 0;

    for (size_t k = 0; k < N_REALS; k++) {
        if (!isfinite(inst->s.r[k])) {
            inst->s.phase = PHASE_ERROR;
            return fail(inst, "fmi2DoStep", "'%s' became %g at t=%g; the model left its valid "
                        "range (check parameters and inputs)", REAL_VARIABLES[k].name,
                        inst->s.r[k], inst->s.time);
        }
    }
    return fmi2OK;
}

fmi2Status fmi2CancelStep(fmi2Component c) {
    return fail((ModelInstance *)c, "fmi2CancelStep", "steps are synchronous; nothing to cancel");
}

fmi2Status fmi2GetStatus(fmi2Component c, const fmi2StatusKind s, fmi2Status *value) {
    (void)s; (void)value;
    return fail((ModelInstance *)c, "fmi2GetStatus", "not supported: steps are synchronous");
}

fmi2Status fmi2GetRealStatus(fmi2Component c, const fmi2StatusKind s, fmi2Real *value) {
    ModelInstance *inst = (ModelInstance *)c;
    if (!inst) return fmi2Error;
    if (s == fmi2LastSuccessfulTime && value) {
        *value = inst->s.time;
        return fmi2OK;
    }
    return fail(inst, "fmi2GetRealStatus", "only fmi2LastSuccessfulTime is supported");
}

fmi2Status fmi2GetIntegerStatus(fmi2Component c, const fmi2StatusKind s, fmi2Integer *value) {
    (void)s; (void)value;
    return fail((ModelInstance *)c, "fmi2GetIntegerStatus", "not supported");
}

fmi2Status fmi2GetBooleanStatus(fmi2Component c, const fmi2StatusKind s, fmi2Boolean *value) {
    ModelInstance *inst = (ModelInstance *)c;
    if (!inst) return fmi2Error;
    if (s == fmi2Terminated && value) {
        *value = fmi2False;
        return fmi2OK;
    }
    return fail(inst, "fmi2GetBooleanStatus", "only fmi2Terminated is supported");
}

fmi2Status fmi2GetStringStatus(fmi2Component c, const fmi2StatusKind s, fmi2String *value) {
    (void)s; (void)value;
    return fail((ModelInstance *)c, "fmi2GetStringStatus", "not supported");
}
