from neurod.main import main

main()
