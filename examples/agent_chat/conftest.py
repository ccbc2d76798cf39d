"""The agent-chat example's tests import ``agent_app`` and ``agent_client`` from this folder."""
