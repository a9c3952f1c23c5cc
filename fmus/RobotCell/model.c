/*
 * RobotCell: an industrial robot cell running handling/welding cycles.
 * Equations and parameter sources: README.md in this folder.
 */
#include "fmu_runtime.h"

#include <math.h>

#define MODE_OFF 0
#define MODE_STANDBY 1
#define MODE_IDLE 2
#define MODE_RUNNING 3

const double MODEL_MAX_SUBSTEP = 1.0; /* s; joint time constant is ~30 min */

static double cycle_time(const ModelInstance *inst) {
    return R(process_time) + R(motion_time) / R(speed_override);
}

/* Share of a cycle spent moving. */
static double motion_share(const ModelInstance *inst) {
    return (R(motion_time) / R(speed_override)) / cycle_time(inst);
}

/* Relative drive load from the payload: empty_share + (1 - empty_share) m / m_rated. */
static double payload_load(const ModelInstance *inst) {
    return R(empty_drive_share) + (1.0 - R(empty_drive_share)) * R(payload) / R(rated_payload);
}

/* Mean drive power while moving [kW]. */
static double moving_power(const ModelInstance *inst) {
    return R(drive_power) * pow(R(speed_override), R(speed_exponent)) * payload_load(inst);
}

/* Cycle-averaged power while running [kW]. */
static double running_power(const ModelInstance *inst) {
    double share = motion_share(inst);
    return R(standby_power) + R(hold_power) + share * moving_power(inst) +
           (1.0 - share) * R(process_power);
}

/* Electrical power [kW] and joint heat [kW] in the current mode. */
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
        *power = R(standby_power) + R(hold_power);
        *heat = R(loss_fraction) * R(hold_power);
        return;
    default:
        *power = running_power(inst);
        *heat = R(loss_fraction) * (R(hold_power) + motion_share(inst) * moving_power(inst));
    }
}

fmi2Status model_initialize(ModelInstance *inst) {
    R(joint_temperature) = R(initial_joint_temperature);
    R(wear) = R(initial_wear);
    R(energy) = 0.0;
    R(cycles_completed) = 0.0;
    B(previous_gripper_service) = B(gripper_service);
    return fmi2OK;
}

void model_event(ModelInstance *inst) {
    if (B(gripper_service) && !B(previous_gripper_service)) {
        R(wear) = R(initial_wear);
        tf_log(inst, fmi2OK, "logEvents", "gripper service at t=%g s", inst->s.time);
    }
    B(previous_gripper_service) = B(gripper_service);
}

void model_advance(ModelInstance *inst, double h) {
    double power, heat, tau, steady;
    power_and_heat(inst, &power, &heat);
    tau = R(thermal_capacity) * R(thermal_resistance);
    steady = R(ambient_temperature) + heat * 1000.0 * R(thermal_resistance);
    R(joint_temperature) = steady + (R(joint_temperature) - steady) * exp(-h / tau);
    R(energy) += power * h / 3600.0;
    if (I(mode) == MODE_RUNNING) {
        double speed = R(speed_override);
        double rate = speed * speed * payload_load(inst) / (R(service_life) * 3600.0);
        R(wear) += rate * R(wear_rate_factor) * h;
        R(cycles_completed) += h / cycle_time(inst);
    }
}

void model_outputs(ModelInstance *inst) {
    double power, heat, excess;
    power_and_heat(inst, &power, &heat);
    R(power) = power;
    R(cycle_time) = cycle_time(inst);
    R(energy_per_cycle) = running_power(inst) * cycle_time(inst) / 3.6; /* kW s -> Wh */
    excess = fmax(0.0, R(joint_temperature) - R(alarm_temperature));
    R(hazard_rate) = I(mode) == MODE_OFF
                         ? 0.0
                         : R(base_hazard_rate) * (1.0 + R(hazard_wear_gain) * R(wear) * R(wear)) *
                               exp(excess / R(hazard_temperature_scale));
}
