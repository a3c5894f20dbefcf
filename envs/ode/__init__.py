"""Continuous-expression worlds: any Boolean world as stochastic ODEs (BoolODE-style), graded
perturbations, and the gymnasium environment over them."""

from envs.ode.integrate import UnstableStep, simulate, steady_state
from envs.ode.model import OdeModel
from envs.ode.params import OdeParams, ode_params
from envs.ode.world import OdeWorld, ode_world

__all__ = ["OdeModel", "OdeParams", "OdeWorld", "UnstableStep", "ode_params", "ode_world", "simulate", "steady_state"]
