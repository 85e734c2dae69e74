def stream_main(): print("hi")
