/*
 * CncMill: a CNC machining centre face-milling steel parts.
 * Equations and parameter sources: README.md in this folder.
 */
#include "fmu_runtime.h"

#include <math.h>

#define MODE_OFF 0
#define MODE_STANDBY 1
#define MODE_IDLE 2
#define MODE_CUTTING 3

#define PI 3.14159265358979323846

const double MODEL_MAX_SUBSTEP = 1.0; /* s; spindle time constant is ~490 s */

/* Past this multiple of the wear limit the cutting edge is destroyed: wear stops growing
 * and its effects (energy, vibration, defects, hazard) saturate. Without the cap, wear ->
 * heat -> faster wear would run away on a tool that is never changed. */
#define MAX_WEAR_RATIO 3.0

/* VB / VB_lim, saturated at MAX_WEAR_RATIO. */
static double wear_ratio(const ModelInstance *inst) {
    return fmin(R(tool_wear) / R(wear_limit), MAX_WEAR_RATIO);
}

/* Feed rate v_f = f_z * z * n [mm/min]. */
static double feed_rate(const ModelInstance *inst) {
    return R(feed_per_tooth) * (double)I(tooth_count) * R(spindle_speed);
}

/* Material removal rate at the commanded speed and feed [mm3/s]. */
static double commanded_mrr(const ModelInstance *inst) {
    return R(depth_of_cut) * R(width_of_cut) * feed_rate(inst) / 60.0;
}

/* Specific cutting energy with chip-thickness and wear effects [J/mm3]. */
static double specific_energy(const ModelInstance *inst) {
    double thickness = pow(R(feed_per_tooth) / R(reference_chip_thickness),
                           -R(chip_thickness_exponent));
    double dullness = 1.0 + R(dull_tool_energy_factor) * wear_ratio(inst);
    return R(specific_cutting_energy) * thickness * dullness;
}

/* Tip power while cutting at the commanded conditions [kW]. */
static double commanded_cutting_power(const ModelInstance *inst) {
    return specific_energy(inst) * commanded_mrr(inst) / 1000.0;
}

static double spindle_no_load_power(const ModelInstance *inst) {
    double n = R(spindle_speed);
    return R(spindle_loss_linear) * n + R(spindle_loss_quadratic) * n * n;
}

/* Electrical power [kW] and heat into the spindle unit [kW] in the current mode. */
static void power_and_heat(const ModelInstance *inst, double *power, double *heat) {
    switch (I(mode)) {
    case MODE_OFF:
        *power = 0.0;
        *heat = 0.0;
        return;
    case MODE_STANDBY:
        *power = R(standby_power);
        *heat = 0.0;
        return;
    case MODE_IDLE:
        *power = R(ready_power);
        *heat = 0.0;
        return;
    default: {
        double tip = commanded_cutting_power(inst);
        double spindle = spindle_no_load_power(inst);
        double cutting_loss = R(spindle_loss_fraction) * tip;
        *power = R(ready_power) + spindle + tip + cutting_loss;
        *heat = spindle + cutting_loss;
    }
    }
}

/* Taylor tool life [min] at the commanded conditions and reference temperature. */
static double taylor_life(const ModelInstance *inst) {
    double vc = PI * R(tool_diameter) * R(spindle_speed) / 1000.0;
    double feed_term = pow(R(feed_per_tooth) / R(reference_feed), R(taylor_feed_exponent));
    return pow(R(taylor_constant) / (vc * feed_term), 1.0 / R(taylor_exponent));
}

/* Vibration velocity RMS [mm/s] if the machine were cutting now. */
static double cutting_vibration(const ModelInstance *inst) {
    double n = R(spindle_speed) / 1000.0;
    double wear = wear_ratio(inst);
    double spindle = R(vibration_spindle_coefficient) * n * n;
    double cutting = R(vibration_cutting_coefficient) * sqrt(commanded_cutting_power(inst)) *
                     (1.0 + R(vibration_wear_gain) * wear * wear);
    double background = R(vibration_background);
    return sqrt(background * background + spindle * spindle + cutting * cutting);
}

fmi2Status model_initialize(ModelInstance *inst) {
    R(spindle_temperature) = R(initial_spindle_temperature);
    R(tool_wear) = R(initial_tool_wear);
    R(energy) = 0.0;
    R(parts_machined) = 0.0;
    B(previous_tool_change) = B(tool_change);
    return fmi2OK;
}

void model_event(ModelInstance *inst) {
    if (B(tool_change) && !B(previous_tool_change)) {
        R(tool_wear) = R(initial_tool_wear);
        tf_log(inst, fmi2OK, "logEvents", "tool change at t=%g s", inst->s.time);
    }
    B(previous_tool_change) = B(tool_change);
}

/* Exact first-order response of the spindle temperature to constant heat over h. */
static double spindle_temperature_after(const ModelInstance *inst, double heat, double h) {
    double tau = R(thermal_capacity) * R(thermal_resistance);
    double steady = R(ambient_temperature) + heat * 1000.0 * R(thermal_resistance);
    return steady + (R(spindle_temperature) - steady) * exp(-h / tau);
}

/*
 * Heat and power rise with tool wear (dull-tool energy) and wear rises with
 * temperature, so one sub-step is a predictor-corrector (Heun) step: predict
 * the temperature with the heat at the start, advance wear with the mean
 * temperature, then redo the temperature with the mean heat and integrate
 * energy by the trapezoid rule. Second order in h.
 */
void model_advance(ModelInstance *inst, double h) {
    double power, heat, power_after, heat_after, predicted;
    power_and_heat(inst, &power, &heat);
    predicted = spindle_temperature_after(inst, heat, h);

    if (I(mode) == MODE_CUTTING) {
        double mean_temperature = 0.5 * (R(spindle_temperature) + predicted);
        double thermal = exp(R(wear_temperature_coefficient) *
                             (mean_temperature - R(wear_reference_temperature)));
        double rate = R(wear_limit) / (taylor_life(inst) * 60.0); /* mm/s */
        double worn_out = MAX_WEAR_RATIO * R(wear_limit);
        if (R(tool_wear) < worn_out)
            R(tool_wear) = fmin(worn_out, R(tool_wear) + rate * thermal * R(wear_rate_factor) * h);
        R(parts_machined) += commanded_mrr(inst) * h / (R(part_volume) * 1000.0);
    }

    power_and_heat(inst, &power_after, &heat_after);
    R(spindle_temperature) = spindle_temperature_after(inst, 0.5 * (heat + heat_after), h);
    R(energy) += 0.5 * (power + power_after) * h / 3600.0;
}

void model_outputs(ModelInstance *inst) {
    double power, heat, wear, vibration, temperature_excess, defect;
    int cutting = I(mode) == MODE_CUTTING;
    double mrr = commanded_mrr(inst);

    power_and_heat(inst, &power, &heat);
    R(power) = power;
    R(cutting_power) = cutting ? commanded_cutting_power(inst) : 0.0;
    R(material_removal_rate) = cutting ? mrr * 60.0 / 1000.0 : 0.0;
    R(cutting_speed) = PI * R(tool_diameter) * R(spindle_speed) / 1000.0;
    R(tool_life) = taylor_life(inst);
    R(cutting_time) = R(part_volume) * 1000.0 / mrr;
    R(cycle_time) = R(cutting_time) + R(handling_time);

    wear = wear_ratio(inst);
    vibration = cutting_vibration(inst);
    switch (I(mode)) {
    case MODE_OFF: R(vibration_rms) = 0.0; break;
    case MODE_CUTTING: R(vibration_rms) = vibration; break;
    default: R(vibration_rms) = R(vibration_background); break;
    }

    defect = R(defect_base) + R(defect_wear_gain) * wear * wear +
             R(defect_vibration_gain) * fmax(0.0, vibration - R(vibration_zone_ab)) /
                 R(vibration_zone_ab);
    R(defect_probability) = fmin(1.0, defect);

    temperature_excess = fmax(0.0, R(spindle_temperature) - R(alarm_temperature));
    R(hazard_rate) = I(mode) == MODE_OFF
                         ? 0.0
                         : R(base_hazard_rate) * (1.0 + R(hazard_wear_gain) * wear * wear) *
                               exp(temperature_excess / R(hazard_temperature_scale));
    /* A worn edge breaks: tool breakage is the dominant failure while cutting past the wear
     * limit (cutting forces and spindle power rise sharply near failure). */
    if (cutting)
        R(hazard_rate) += R(tool_breakage_rate) * exp(R(breakage_wear_slope) * (wear - 1.0));
}
