"""Agent services, split by concern: versions, onboarding, keys, management, configuration."""
