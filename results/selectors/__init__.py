"""Reads of what agents report: the admin's agent overview, and the query API's reports."""

from results.selectors.overview import AgentOverview, agent_overview, endpoints_with_results

__all__ = ["AgentOverview", "agent_overview", "endpoints_with_results"]
