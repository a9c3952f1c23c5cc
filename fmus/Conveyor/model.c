/*
 * Conveyor: a powered roller-conveyor section between two stations.
 * Equations and parameter sources: README.md in this folder.
 */
#include "fmu_runtime.h"

#include <math.h>

#define GRAVITY 9.80665 /* m/s2 */

const double MODEL_MAX_SUBSTEP = 1.0; /* s; motor time constant is ~20 min */

/* Tractive force at the rollers [N]: rolling resistance of the goods plus idler drag. */
static double tractive_force(const ModelInstance *inst) {
    double rollers = floor(R(length) / R(roller_pitch));
    return R(load_mass) * GRAVITY * R(rolling_resistance) + rollers * R(roller_drag);
}

/* Electrical power [kW] and motor heat [W]. */
static void power_and_heat(const ModelInstance *inst, double *power, double *heat) {
    if (!B(running)) {
        *power = R(standby_power);
        *heat = 0.0;
        return;
    }
    {
        double mechanical = tractive_force(inst) * R(belt_speed); /* W */
        double electrical = mechanical / R(drive_efficiency);
        *power = R(standby_power) + electrical / 1000.0;
        *heat = electrical - mechanical;
    }
}

fmi2Status model_initialize(ModelInstance *inst) {
    R(motor_temperature) = R(initial_motor_temperature);
    R(energy) = 0.0;
    R(distance_travelled) = 0.0;
    return fmi2OK;
}

void model_event(ModelInstance *inst) { (void)inst; }

void model_advance(ModelInstance *inst, double h) {
    double power, heat, tau, steady;
    power_and_heat(inst, &power, &heat);
    tau = R(thermal_capacity) * R(thermal_resistance);
    steady = R(ambient_temperature) + heat * R(thermal_resistance);
    R(motor_temperature) = steady + (R(motor_temperature) - steady) * exp(-h / tau);
    R(energy) += power * h / 3600.0;
    if (B(running)) R(distance_travelled) += R(belt_speed) * h;
}

void model_outputs(ModelInstance *inst) {
    double power, heat, excess;
    power_and_heat(inst, &power, &heat);
    R(power) = power;
    R(tractive_force) = B(running) ? tractive_force(inst) : 0.0;
    R(transport_time) = R(length) / R(belt_speed);
    excess = fmax(0.0, R(motor_temperature) - R(alarm_temperature));
    R(hazard_rate) = B(running)
                         ? R(base_hazard_rate) * exp(excess / R(hazard_temperature_scale))
                         : 0.0;
}
