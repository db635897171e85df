"""The aiohttp gateway: routes per context and the middlewares every route shares."""
