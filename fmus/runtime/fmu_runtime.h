/*
 * twinfactory FMI 2.0 co-simulation runtime.
 *
 * One small runtime shared by every shipped model. It implements the whole
 * FMI 2.0 co-simulation API (instantiation, lifecycle, get/set with range
 * checks, FMU state get/set/serialise, fixed internal sub-stepping) and asks
 * the model for four things only:
 *
 *   model_initialize(inst)    on leaving initialisation mode: set the states
 *                             from the parameters, return fmi2OK or fmi2Error
 *   model_event(inst)         at a communication point, before integrating:
 *                             react to discrete input changes (edges)
 *   model_advance(inst, h)    integrate the states over h seconds, inputs
 *                             held constant, h <= MODEL_MAX_SUBSTEP
 *   model_outputs(inst)       compute the algebraic outputs from states and
 *                             inputs (called whenever they may be stale)
 *
 * The per-model header "model_variables.h" is generated from the model's
 * modelDescription.xml by fmus/_codegen.py: it defines MODEL_IDENTIFIER,
 * MODEL_GUID, the variable tables and one index macro per variable
 * (R_name, I_name, B_name into the typed value arrays).
 */
#ifndef TWINFACTORY_FMU_RUNTIME_H
#define TWINFACTORY_FMU_RUNTIME_H

#include <stddef.h>
#include "fmi2Functions.h"

typedef enum {
    CAUSALITY_PARAMETER,
    CAUSALITY_CALCULATED_PARAMETER,
    CAUSALITY_INPUT,
    CAUSALITY_OUTPUT,
    CAUSALITY_LOCAL,
    CAUSALITY_INDEPENDENT
} Causality;

typedef enum {
    VARIABILITY_CONSTANT,
    VARIABILITY_FIXED,
    VARIABILITY_TUNABLE,
    VARIABILITY_DISCRETE,
    VARIABILITY_CONTINUOUS
} Variability;

/* Static description of one variable, generated from modelDescription.xml. */
typedef struct {
    fmi2ValueReference vr;
    const char *name;
    const char *unit;
    Causality causality;
    Variability variability;
    double start; /* NaN where the description has no start value */
    double min;   /* -INFINITY where unbounded */
    double max;   /* +INFINITY where unbounded */
} VariableInfo;

#include "model_variables.h"

/* Array sizes may not be zero in C. */
#define TF_ARRAY_SIZE(n) ((n) > 0 ? (n) : 1)

typedef enum {
    PHASE_INSTANTIATED = 1,
    PHASE_INITIALIZATION = 2,
    PHASE_STEP_COMPLETE = 3,
    PHASE_TERMINATED = 4,
    PHASE_ERROR = 5
} Phase;

/*
 * Everything that evolves lives in ModelState, a plain struct without
 * pointers, so that FMU state get/set is a copy and serialisation is a byte
 * image with a header.
 */
typedef struct {
    double time;
    Phase phase;
    int outputs_stale;
    double r[TF_ARRAY_SIZE(N_REALS)];
    int i[TF_ARRAY_SIZE(N_INTEGERS)];
    int b[TF_ARRAY_SIZE(N_BOOLEANS)];
} ModelState;

typedef struct {
    ModelState s;
    char *instance_name;
    const fmi2CallbackFunctions *callbacks;
    int logging_on;
    double stop_time;
    int stop_time_defined;
} ModelInstance;

/* Typed access for model code: R(spindle_speed) is the Real variable. */
#define R(name) (inst->s.r[R_##name])
#define I(name) (inst->s.i[I_##name])
#define B(name) (inst->s.b[B_##name])

/* Implemented by each model (see the comment at the top). */
extern const double MODEL_MAX_SUBSTEP; /* seconds */
fmi2Status model_initialize(ModelInstance *inst);
void model_event(ModelInstance *inst);
void model_advance(ModelInstance *inst, double h);
void model_outputs(ModelInstance *inst);

/* Logging for model code; errors and warnings are always reported. */
void tf_log(ModelInstance *inst, fmi2Status status, const char *category,
            const char *format, ...);

#endif
